//! The per-request decision: the [`gate::Gate`] decides, and its [`Outcome`] is final. The
//! glue applies it (what the upstream receives, [`upstream`]; the log line and access-log
//! fields, [`record`]; the counters, [`stats`]) and never reads the request again to
//! decide.

pub mod gate;
pub mod policy;
pub mod record;
pub mod rules;
pub mod stats;
pub mod upstream;

use crate::deny::DenyReason;
use crate::keys::parked::Wait;
use crate::provider::ProviderId;
use crate::quota::Slot;
use crate::token::cut::TokenCut;
use crate::token::identity::{Denial, Identity};

/// The gate's one answer for a guarded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The provider whose policy decided, once the gate chose one (`None`: refused before,
    /// or no accepted provider's issuer is the token's `iss`).
    pub provider: Option<ProviderId>,
    /// How to cut every token the request carried (the one token, or every copy for
    /// `multiple_tokens`): the glue cuts them before the request goes on or Envoy logs it.
    pub tokens: TokenCut,
    pub verdict: Verdict,
    /// Whether the token cache answered.
    pub cache: CacheUse,
    /// The socket counted against the identity (`max_sockets_per_identity`): the glue gives
    /// it back when the stream ends, whatever became of the request.
    pub slot: Option<Slot>,
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Accepted: forward it with this identity.
    Allow(Identity),
    /// Refused: send the reason's local reply.
    Deny(Denial),
    /// No usable key yet, and a fetch may bring one: park the request until the wait ends,
    /// then decide it again without waiting. The denial is the answer if it cannot wait.
    AwaitKeys(Wait, Denial),
}

impl Outcome {
    /// A refusal for `reason` before any provider was chosen, its tokens cut by `tokens`.
    pub fn refused(reason: DenyReason, tokens: TokenCut) -> Outcome {
        Outcome {
            provider: None,
            tokens,
            verdict: Verdict::Deny(reason.into()),
            cache: CacheUse::Off,
            slot: None,
        }
    }

    /// The same outcome, but never waiting: an [`Verdict::AwaitKeys`] becomes its denial.
    pub fn without_waiting(self) -> Outcome {
        match self.verdict {
            Verdict::AwaitKeys(_, denial) => Outcome {
                verdict: Verdict::Deny(denial),
                ..self
            },
            _ => self,
        }
    }

    /// The deny reason, for a refusal or a wait.
    pub fn deny_reason(&self) -> Option<DenyReason> {
        match &self.verdict {
            Verdict::Allow(_) => None,
            Verdict::Deny(denial) | Verdict::AwaitKeys(_, denial) => Some(denial.reason),
        }
    }

    /// The identity, when accepted.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.verdict {
            Verdict::Allow(identity) => Some(identity),
            _ => None,
        }
    }
}

/// Whether a decision used the token cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Answered from the cache.
    Hit,
    /// Verified, and cached when valid.
    Miss,
    /// No cache, or decided before any token was verified.
    Off,
}
