//! Planning the network for a sibling cluster: can green's subnets fit
//! beside blue's, and do its service and pod ranges collide with anything?
//!
//! [`sizing`] turns a cluster shape into address needs, [`inventory`] says
//! what exists (from a file or [`azure`]), [`space`] does the arithmetic,
//! and [`report::plan`] puts it together; [`az`] turns a plan that fits
//! into the `az` commands that create it.

pub mod az;
pub mod azure;
pub mod inventory;
pub mod report;
pub mod sizing;
pub mod space;

pub use inventory::Inventory;
pub use report::{plan, Report};
pub use sizing::ClusterShape;
