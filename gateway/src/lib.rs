//! The cutover gateway: a pingora reverse proxy that splits each route's
//! traffic between a blue and a green cluster.
//!
//! Start at [`server::run`]; an HTTP/1 request's path through the code is
//! [`http1`], an HTTP/2 stream's [`h2`] (what neither serves itself goes
//! to pingora-proxy, [`proxy`]), all choosing route, colour and endpoint
//! with [`choose`]; the split and stickiness are
//! [`split`], and every change of state goes through [`control::Gateway`].

pub mod access_log;
pub mod admin;
pub mod choose;
pub mod config;
pub mod control;
pub mod deadline;
pub mod drain;
pub mod follow;
pub mod forwarded;
pub mod h2;
pub mod headers;
pub mod health;
pub mod http1;
pub mod lifecycle;
pub mod limits;
pub mod listening;
pub mod metrics;
pub mod mirror;
pub mod pin;
pub mod proxy;
pub mod proxy_protocol;
pub mod request_id;
pub mod resolve;
pub mod routing;
pub mod server;
pub mod signals;
pub mod split;
pub mod state;
pub mod systemd;
pub mod tcp;
pub mod tls;
pub mod upgrade;
pub mod upstream;
