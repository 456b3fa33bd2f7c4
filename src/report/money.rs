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

/// Why an amount in major units could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{text:?} is not an amount: write it in major units, like 12.50")]
    NotANumber { text: String },
    #[error(
        "{text:?} has {given} decimal(s) but {} has {exponent}{}",
        currency.to_ascii_uppercase(),
        if *exponent == 0 { " (no minor unit): give a whole number" } else { "" }
    )]
    TooManyDecimals {
        text: String,
        given: usize,
        exponent: u32,
        currency: String,
    },
    #[error("{text:?} is too large")]
    TooLarge { text: String },
}

/// Reads an amount given in major units of `currency` ("12.50" EUR, "1200" JPY,
/// "1.234" KWD) as minor units, exactly (no floats). Fewer decimals than the currency
/// has are fine ("12.5" EUR is 1250); more are refused, even zeros, so that a JPY
/// amount typed as if it had cents is caught. No sign, no exponent, no separators.
pub fn parse_major(text: &str, currency: &str) -> Result<i64, AmountError> {
    let e = exponent(currency);
    let not_a_number = || AmountError::NotANumber {
        text: text.to_string(),
    };
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return Err(not_a_number());
    }
    let fraction = fraction.unwrap_or("");
    if fraction.len() > e as usize {
        return Err(AmountError::TooManyDecimals {
            text: text.to_string(),
            given: fraction.len(),
            exponent: e,
            currency: currency.to_string(),
        });
    }
    let too_large = || AmountError::TooLarge {
        text: text.to_string(),
    };
    let whole: i64 = whole.parse().map_err(|_| too_large())?;
    let padded = format!("{fraction:0<width$}", width = e as usize);
    let fraction: i64 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| not_a_number())?
    };
    whole
        .checked_mul(10i64.pow(e))
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_amounts_are_read_by_the_currencys_exponent() {
        assert_eq!(parse_major("12.50", "eur"), Ok(1250));
        assert_eq!(parse_major("12.5", "EUR"), Ok(1250));
        assert_eq!(parse_major("12", "usd"), Ok(1200));
        assert_eq!(parse_major("0.05", "usd"), Ok(5));
        assert_eq!(parse_major("1200", "jpy"), Ok(1200));
        assert_eq!(parse_major("1.234", "kwd"), Ok(1234));
        assert_eq!(parse_major("1.2", "bhd"), Ok(1200));
        let err = parse_major("12.345", "eur").unwrap_err();
        assert!(
            matches!(
                err,
                AmountError::TooManyDecimals {
                    given: 3,
                    exponent: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("EUR has 2"), "{err}");
        let err = parse_major("1200.00", "jpy").unwrap_err();
        assert!(err.to_string().contains("no minor unit"), "{err}");
        for bad in [
            "", ".5", "5.", "-1", "+1", "1e3", "1,50", "12.5.0", " 1", "abc",
        ] {
            assert!(
                matches!(parse_major(bad, "eur"), Err(AmountError::NotANumber { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_major("92233720368547758.08", "usd"),
            Err(AmountError::TooLarge { .. })
        ));
        assert_eq!(parse_major("92233720368547758.07", "usd"), Ok(i64::MAX));
    }

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
