//! A plan's `drain:`: once the last step sent everything to green, blue's
//! remaining tunnels and streams are ended on every stage's fleet, as
//! `cutover drain --color blue` does, and the run's journal says whether
//! blue is empty.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrainPlan {
    /// When blue's remaining tunnels (WebSocket) and streams are closed.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
}
