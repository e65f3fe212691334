//! The cutover engine and operator CLI: move a gateway fleet from blue to
//! green step by step under gates, smoke checks and preflight checks, roll
//! back by itself, and keep a journal that survives any crash.
//!
//! Start at [`engine::Engine::run`]; the plan format is [`plan::Plan`].
//!
//! The modules form layers; each uses only layers below it
//! (the workspace's `tests/tests/layers.rs` checks this and prints them):
//!
//! | layer | modules | job |
//! |---|---|---|
//! | 0 | [`host`], [`outcome`], [`preflight`], [`network`] | plain facts: who and when, how a run ended; the stand-alone checks |
//! | 1 | [`plan`] | the plan file and its validation |
//! | 2 | [`fleet`], [`smoke`] | the gateways' admin APIs (state, splits, lock); smoke requests |
//! | 3 | [`figures`] | per-colour figures from the gateways' metrics or Prometheus |
//! | 4 | [`gates`] | verdicts on those figures |
//! | 5 | [`journal`] | the durable record of every transition |
//! | 6 | [`progress`] | where a run stands, from its records |
//! | 6 | [`output`] | what operators see (human or JSON, progress bars) |
//! | 7 | [`engine`] | the run loop, its control handling, resume and rollback |
//! | 7 | [`report`] | a run told from its journal: Markdown, JSON, one HTML page |
//! | 8 | [`commands`], [`status`], [`demo`] | the CLI's commands |
//! | 9 | [`cli`] | the command line: commands, flags, help texts |

pub mod cli;
pub mod commands;
pub mod demo;
pub mod engine;
pub mod figures;
pub mod fleet;
pub mod gates;
pub mod host;
pub mod journal;
pub mod network;
pub mod notify;
pub mod outcome;
pub mod output;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod report;
pub mod smoke;
pub mod status;
