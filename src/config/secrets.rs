//! The secrets the config names, read from the environment, and how each may be shown:
//! never more than a key's known prefix and its length, never a URL's credentials.

use secrecy::{ExposeSecret, SecretString};

use super::{Config, ConfigError, StripeMode};

/// Secrets resolved from the environment. `Debug` never shows them.
#[derive(Clone)]
pub struct Secrets {
    pub stripe_secret_key: SecretString,
    pub webhook_secrets: Vec<SecretString>,
    /// `[alerts]` webhook URL, from the file or `webhook_url_env`.
    pub alert_webhook_url: Option<SecretString>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("stripe_secret_key", &"[redacted]")
            .field(
                "webhook_secrets",
                &format!("[{} redacted]", self.webhook_secrets.len()),
            )
            .field(
                "alert_webhook_url",
                &self.alert_webhook_url.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl Secrets {
    /// Resolves the secrets with `lookup` (the environment, or a map in tests).
    pub fn from_lookup(
        config: &Config,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Secrets, ConfigError> {
        let key = Secrets::key_from_lookup(config, &lookup)?;
        let hook_var = &config.stripe.webhook_secret_env;
        let split = |var: &str| -> Vec<SecretString> {
            lookup(var)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| SecretString::from(s.to_string()))
                .collect()
        };
        let mut webhook_secrets = split(hook_var);
        if webhook_secrets.is_empty() {
            return Err(ConfigError::MissingSecret {
                var: hook_var.clone(),
                key: "stripe.webhook_secret_env",
                why: "billd needs the webhook signing secret(s) (whsec_…, comma-separated to roll)",
            });
        }
        // A Connect endpoint signs with secrets of its own: accepted beside the
        // platform's (one verifier tries each).
        let connect_var = &config.stripe.connect_webhook_secret_env;
        if !connect_var.is_empty() {
            let connect = split(connect_var);
            if connect.is_empty() {
                return Err(ConfigError::MissingSecret {
                    var: connect_var.clone(),
                    key: "stripe.connect_webhook_secret_env",
                    why: "it names the Connect endpoint's webhook signing secret(s)",
                });
            }
            webhook_secrets.extend(connect);
        }
        let alert_webhook_url = config.alerts.webhook_url(&lookup)?;
        Ok(Secrets {
            stripe_secret_key: key,
            webhook_secrets,
            alert_webhook_url,
        })
    }

    /// The Stripe API key alone, checked against `[stripe] mode`.
    pub fn key_from_lookup(
        config: &Config,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SecretString, ConfigError> {
        let key_var = &config.stripe.secret_key_env;
        let key = lookup(key_var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ConfigError::MissingSecret {
                var: key_var.clone(),
                key: "stripe.secret_key_env",
                why: "billd needs the Stripe API secret key (sk_test_… or sk_live_…)",
            })?;
        let live_key = key.starts_with("sk_live_") || key.starts_with("rk_live_");
        let test_key = key.starts_with("sk_test_") || key.starts_with("rk_test_");
        match config.stripe.mode {
            StripeMode::Test if live_key => {
                return Err(ConfigError::Invalid {
                    key: "stripe.mode",
                    message: format!("is \"test\" but {key_var} holds a live key"),
                });
            }
            StripeMode::Live if test_key => {
                return Err(ConfigError::Invalid {
                    key: "stripe.mode",
                    message: format!("is \"live\" but {key_var} holds a test key"),
                });
            }
            _ => {}
        }
        Ok(SecretString::from(key))
    }

    /// A masked description for `billd config check`: the key's known prefix and its
    /// length, never more (DESIGN §2).
    pub fn describe_key(&self) -> String {
        mask(self.stripe_secret_key.expose_secret())
    }

    /// The webhook secrets, each masked like [`Secrets::describe_key`].
    pub fn describe_webhook_secrets(&self) -> String {
        let each: Vec<String> = self
            .webhook_secrets
            .iter()
            .map(|s| mask(s.expose_secret()))
            .collect();
        format!("{} secret(s): {}", each.len(), each.join(", "))
    }
}

/// The prefixes of Stripe's secrets that say what a secret is and nothing about it.
const KNOWN_PREFIXES: [&str; 5] = ["sk_test_", "sk_live_", "rk_test_", "rk_live_", "whsec_"];

/// A secret as `config check` may show it: its known prefix, if any, and its length.
/// A secret without a known prefix shows none of its characters, since anything before
/// the first `_` might be the secret itself.
pub fn mask(secret: &str) -> String {
    let length = secret.chars().count();
    match KNOWN_PREFIXES.iter().find(|p| secret.starts_with(*p)) {
        Some(prefix) => format!("{prefix}… ({length} characters)"),
        None => format!("… (no known prefix, {length} characters)"),
    }
}

/// A URL with any `user:password@` replaced by `***@`: a URL may carry credentials,
/// and `config check` output ends up in tickets and chat.
pub fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let host = &authority[at + 1..];
    match scheme {
        Some(scheme) => format!("{scheme}://***@{host}{tail}"),
        None => format!("***@{host}{tail}"),
    }
}

/// A webhook URL as logs and `config check` may show it: its scheme and host, since
/// the path of a Slack-style URL is its secret.
pub fn mask_url(url: &str) -> String {
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return format!("… (not a URL, {} characters)", url.chars().count());
    };
    format!(
        "{}://{}/… ({} characters)",
        uri.scheme_str().unwrap_or("?"),
        uri.host().unwrap_or("?"),
        url.chars().count()
    )
}
