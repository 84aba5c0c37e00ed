//! The threads that run searches for the web pages and the API: one per core.
//!
//! A search is CPU-bound work, so running more of them at once than there are cores only adds
//! switching. On tokio's blocking pool a burst of concurrent searches starts a thread each,
//! and glibc gives every thread an allocator arena of its own that stays resident after the
//! burst: with 8 clients on 100,000 documents the server held 14 arenas and 130 MB of heap
//! after ten seconds. A fixed pool keeps that to one arena per core; requests beyond it wait
//! in the queue, which on a busy machine they would do for the cores anyway.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::web::error::AppError;

type Job = Box<dyn FnOnce() + Send>;

/// A handle on the search threads; cheap to clone. The threads end when the last handle
/// is dropped.
#[derive(Clone)]
pub struct SearchPool {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for SearchPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchPool").finish_non_exhaustive()
    }
}

impl SearchPool {
    /// Starts `threads` threads (at least one).
    pub fn new(threads: usize) -> std::io::Result<SearchPool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("samle-search-{i}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = job else { return };
                        // A panicking search fails its own request (its reply is dropped),
                        // not the thread: the pool must not shrink.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(SearchPool { jobs })
    }

    /// One thread per core.
    pub fn per_core() -> std::io::Result<SearchPool> {
        SearchPool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `f` on a search thread and waits for its result.
    pub async fn run<F, R>(&self, f: F) -> Result<R, AppError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = reply.send(f());
            }))
            .map_err(|_| AppError::internal("the search threads have stopped"))?;
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
