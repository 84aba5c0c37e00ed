//! Login throttling, per account and per client address (governor's keyed GCRA limiters).
//!
//! A client address gets a burst of attempts and then one more every few seconds; an
//! account gets a smaller burst and one more every half minute. The client is checked first
//! and refused without touching the account's budget, so one noisy address cannot drain an
//! account faster than its own limit allows, and once the noise stops the real user can try
//! again within one refill interval: nobody is locked out for long.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How attempts are budgeted.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    pub account_burst: u32,
    pub account_refill: Duration,
    pub client_burst: u32,
    pub client_refill: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            account_burst: 10,
            account_refill: Duration::from_secs(30),
            client_burst: 20,
            client_refill: Duration::from_secs(6),
        }
    }
}

pub struct LoginThrottle {
    accounts: DefaultKeyedRateLimiter<String>,
    clients: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn quota(burst: u32, refill: Duration) -> Quota {
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(refill.max(Duration::from_millis(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// Which budget ran out, and when the next attempt will be allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub by_client: bool,
    pub retry_after: Duration,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> LoginThrottle {
        LoginThrottle {
            accounts: RateLimiter::keyed(quota(policy.account_burst, policy.account_refill)),
            clients: RateLimiter::keyed(quota(policy.client_burst, policy.client_refill)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one attempt from the client's and then the account's budget.
    pub fn attempt(&self, account: &str, client: Option<IpAddr>) -> Result<(), Throttled> {
        if let Some(ip) = client
            && let Err(not_until) = self.clients.check_key(&ip)
        {
            return Err(Throttled {
                by_client: true,
                retry_after: not_until.wait_time_from(self.clock.now()),
            });
        }
        let key = account.trim().to_lowercase();
        self.accounts
            .check_key(&key)
            .map_err(|not_until| Throttled {
                by_client: false,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Forgets keys whose budgets are full again, so memory does not grow with every name a
    /// stranger tries.
    pub fn forget_idle(&self) {
        self.accounts.retain_recent();
        self.clients.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            account_burst: 3,
            account_refill: Duration::from_secs(3600),
            client_burst: 5,
            client_refill: Duration::from_secs(3600),
        }
    }

    #[test]
    fn an_account_is_throttled_after_its_burst() {
        let t = LoginThrottle::new(policy());
        for _ in 0..3 {
            assert!(t.attempt("Lars", None).is_ok());
        }
        let e = t.attempt("lars", None).unwrap_err();
        assert!(!e.by_client);
        assert!(e.retry_after > Duration::from_secs(3000));
        assert!(
            t.attempt("mette", None).is_ok(),
            "other accounts are unaffected"
        );
    }

    #[test]
    fn a_noisy_client_is_stopped_before_it_drains_other_accounts() {
        let t = LoginThrottle::new(policy());
        let stranger: IpAddr = "192.0.2.7".parse().unwrap();
        let colleague: IpAddr = "192.0.2.8".parse().unwrap();
        for i in 0..5 {
            assert!(t.attempt(&format!("user{i}"), Some(stranger)).is_ok());
        }
        let e = t.attempt("lars", Some(stranger)).unwrap_err();
        assert!(e.by_client);
        // The refused attempt did not touch lars's budget.
        for _ in 0..3 {
            assert!(t.attempt("lars", Some(colleague)).is_ok());
        }
    }

    #[test]
    fn budgets_refill() {
        let t = LoginThrottle::new(ThrottlePolicy {
            account_burst: 1,
            account_refill: Duration::from_millis(50),
            ..policy()
        });
        assert!(t.attempt("a", None).is_ok());
        assert!(t.attempt("a", None).is_err());
        std::thread::sleep(Duration::from_millis(120));
        assert!(t.attempt("a", None).is_ok());
        t.forget_idle();
    }
}
