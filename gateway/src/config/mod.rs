//! The gateway's configuration file (YAML), field by field.
//!
//! [`Config::load`] (in `load.rs`) refuses unknown fields and then checks
//! everything that serde cannot (addresses, ranges, duplicates, files), and
//! reports every problem at once, each naming its field, so an operator
//! fixes a file in one pass. A config that fails there never replaces a
//! running one. Endpoint names are checked for their form only: whether
//! they resolve is `gateway check --resolve`'s question (a name that does
//! not resolve at start waits unresolved while the others serve).

mod access_log;
mod defaults;
mod http2;
mod listeners;
mod load;
mod mirror;
mod schema;
mod tcp;
mod validate;

pub use access_log::*;
pub use http2::Http2Config;
pub use listeners::*;
pub use load::ConfigErrors;
pub use mirror::*;
pub use schema::*;
pub use tcp::{problems as tcp_problems, TcpConfig};

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, String> {
        serde_yaml_ng::from_str::<Config>(yaml).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = r#"
listeners: [{address: "127.0.0.1:8080"}]
routes:
  - name: web
    blue: {endpoints: ["127.0.0.1:8081"]}
    green: {endpoints: ["127.0.0.1:8082"]}
"#;

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert!(c.validate().is_empty());
        assert_eq!(c.admin.address, "127.0.0.1:9090");
        assert_eq!(c.pin.header, "x-cutover-color");
        assert!(c.pin.trusted_sources.is_empty());
        assert_eq!(c.routes[0].path_prefix, "/");
        assert_eq!(c.routes[0].failover, FailoverPolicy::OtherColor);
        assert_eq!(c.state, StateConfig::Memory);
        // Without `stickiness:` the gateway still issues a named cookie.
        assert_eq!(c.routes[0].stickiness.issued_cookie, "cutover_client");
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse(&MINIMAL.replace("name: web", "name: web\n    colour: red")).unwrap_err();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn every_semantic_error_is_reported_with_its_field() {
        let yaml = r#"
listeners: [{address: "localhost:80"}]
pin: {trusted_sources: ["10.0.0.0/33"]}
routes:
  - name: web
    initial_green_percent: 120
    blue: {endpoints: ["127.0.0.1:99999"]}
    green: {endpoints: []}
  - name: web
    path_prefix: api
    blue: {endpoints: ["127.0.0.1:1"]}
    green: {endpoints: ["127.0.0.1:2"]}
"#;
        let errors = parse(yaml).unwrap().validate().join("\n");
        for needle in [
            "listeners[0].address",
            "pin.trusted_sources[0]",
            "routes[0].initial_green_percent",
            "routes[0].blue.endpoints[0]",
            "routes[0].green.endpoints",
            "routes[1].name: duplicate route name",
            "routes[1].path_prefix",
        ] {
            assert!(errors.contains(needle), "missing {needle} in\n{errors}");
        }
    }
}
