//! Money in a currency's own minor unit, shown in major units for people.
//!
//! Stripe amounts are integers in the smallest unit of their currency, and not every
//! currency has cents: JPY has none, KWD has three. Tables and CSV show major units with
//! the currency's own number of decimals; JSON keeps the exact integers.

/// Currencies Stripe treats as having no minor unit.
const ZERO_DECIMAL: [&str; 16] = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// Currencies with three decimals.
const THREE_DECIMAL: [&str; 5] = ["bhd", "jod", "kwd", "omr", "tnd"];

/// Decimals of `currency` (an ISO code, any case): 0, 2 or 3.
pub fn exponent(currency: &str) -> u32 {
    let c = currency.to_ascii_lowercase();
    if ZERO_DECIMAL.contains(&c.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&c.as_str()) {
        3
    } else {
        2
    }
}

/// `minor` units of `currency` in major units: 1250 EUR is "12.50", 1200 JPY "1200",
/// 1234 KWD "1.234", -5 USD "-0.05". Exact: integer arithmetic only.
pub fn format_major(minor: i64, currency: &str) -> String {
    let e = exponent(currency);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if e == 0 {
        return format!("{sign}{abs}");
    }
    let unit = 10u64.pow(e);
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = e as usize
    )
}

/// `minor` units with the upper-case currency code, for tables: "12.50 EUR".
pub fn format_with_code(minor: i64, currency: &str) -> String {
    format!(
        "{} {}",
        format_major(minor, currency),
        currency.to_ascii_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_shown_with_the_currencys_own_decimals() {
        assert_eq!(format_major(1250, "eur"), "12.50");
        assert_eq!(format_major(1200, "jpy"), "1200");
        assert_eq!(format_major(1200, "JPY"), "1200");
        assert_eq!(format_major(1234, "kwd"), "1.234");
        assert_eq!(format_major(5, "usd"), "0.05");
        assert_eq!(format_major(-5, "usd"), "-0.05");
        assert_eq!(format_major(-1500, "krw"), "-1500");
        assert_eq!(format_major(0, "bhd"), "0.000");
        assert_eq!(format_major(i64::MIN, "usd"), "-92233720368547758.08");
        assert_eq!(format_with_code(1250, "eur"), "12.50 EUR");
    }

    #[test]
    fn every_listed_currency_has_its_exponent() {
        for c in ZERO_DECIMAL {
            assert_eq!(exponent(c), 0, "{c}");
        }
        for c in THREE_DECIMAL {
            assert_eq!(exponent(c), 3, "{c}");
        }
        assert_eq!(exponent("usd"), 2);
        assert_eq!(exponent("gbp"), 2);
    }
}
