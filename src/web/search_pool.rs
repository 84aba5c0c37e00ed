//! The threads that run searches for the web pages and the API: one per core.
//!
//! A search is CPU-bound work, so running more of them at once than there are cores only adds
//! switching. On tokio's blocking pool a burst of concurrent searches starts a thread each,
//! and glibc gives every thread an allocator arena of its own that stays resident after the
//! burst: with 8 clients on 100,000 documents the server held 14 arenas and 130 MB of heap
//! after ten seconds. A fixed pool keeps that to one arena per core; requests beyond it wait
//! in the queue, which on a busy machine they would do for the cores anyway.

use std::sync::Arc;

use crate::web::error::AppError;

/// A handle on the search threads (a rayon pool); cheap to clone. The threads end when the
/// last handle is dropped.
#[derive(Clone, Debug)]
pub struct SearchPool {
    pool: Arc<rayon::ThreadPool>,
}

impl SearchPool {
    /// Starts `threads` threads (at least one).
    pub fn new(threads: usize) -> Result<SearchPool, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("samle-search-{i}"))
            // A panicking search fails its own request (its reply is dropped); rayon's default
            // would abort the process.
            .panic_handler(|_| tracing::error!("a search panicked on its thread"))
            .build()?;
        Ok(SearchPool {
            pool: Arc::new(pool),
        })
    }

    /// One thread per core.
    pub fn per_core() -> Result<SearchPool, rayon::ThreadPoolBuildError> {
        SearchPool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `f` on a search thread and waits for its result.
    pub async fn run<F, R>(&self, f: F) -> Result<R, AppError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let _ = reply.send(f());
        });
        result
            .await
            .map_err(|_| AppError::internal("the search failed on its thread (a panic)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panic() {
        let pool = SearchPool::new(1).unwrap();
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);
        assert!(pool.run(|| -> u8 { panic!("boom") }).await.is_err());
        // The one thread is still there.
        assert_eq!(pool.run(|| "after").await.unwrap(), "after");
    }
}
