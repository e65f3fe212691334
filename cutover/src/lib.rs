//! The cutover engine and operator CLI: move a gateway fleet from blue to
//! green step by step under gates, smoke checks and preflight checks, roll
//! back by itself, and keep a journal that survives any crash.
//!
//! Start at [`engine::Engine::run`]; the plan format is [`plan::Plan`].

pub mod commands;
pub mod demo;
pub mod discovery;
pub mod engine;
pub mod figures;
pub mod fleet;
pub mod gates;
pub mod journal;
pub mod network;
pub mod output;
pub mod plan;
pub mod preflight;
pub mod smoke;
