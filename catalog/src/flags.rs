//! The platform's feature flags, one spelling and one parser for all of them. Each is
//! read from its configuration key, then from its environment variable (which wins).
//!
//! | variable | config | gates |
//! |---|---|---|
//! | `ETL_ENABLED` | `etl_enabled` | `watch`, `worker --queue` and the Lambda: off, they leave events untouched |
//! | `MARKETPLACE_ENABLED` | `[marketplace] enabled` | `stackpro serve`: off, it refuses to start |
//! | `DATA_SELLER_PORTAL_ENABLED`, `IOT_ENABLED` | — | parts of the seed design not in this repository; the templates in `infra/` take them as parameters |

/// `ETL_ENABLED`.
pub const ETL_ENABLED: &str = "ETL_ENABLED";
/// `MARKETPLACE_ENABLED`.
pub const MARKETPLACE_ENABLED: &str = "MARKETPLACE_ENABLED";

/// The value of flag `name`: `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, any case,
/// surrounding space ignored.
///
/// # Errors
/// Anything else, with the flag's name and the value, so a typo never silently means
/// "off" (or "on").
pub fn parse_flag(name: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("{name}={other:?}: expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_the_usual_spellings_and_refuse_the_rest() {
        for on in ["true", "TRUE", " 1", "yes", "On "] {
            assert_eq!(parse_flag(ETL_ENABLED, on), Ok(true), "{on}");
        }
        for off in ["false", "0", "no", "OFF"] {
            assert_eq!(parse_flag(ETL_ENABLED, off), Ok(false), "{off}");
        }
        for bad in ["", "enabled", "2", "truee"] {
            let err = parse_flag(MARKETPLACE_ENABLED, bad).expect_err(bad);
            assert!(err.starts_with("MARKETPLACE_ENABLED="), "{err}");
        }
    }
}
