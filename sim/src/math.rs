//! Deterministic numerics. Only IEEE-754 add, multiply and divide are used, which are exact
//! and identical on every platform, unlike libm's `ln`/`exp`, whose last bits vary by libc.

/// splitmix64's output mix: a bijection of `u64` that spreads every input bit over the output.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Natural logarithm of `x > 0` from basic operations only.
pub fn ln(x: f64) -> f64 {
    assert!(x > 0.0 && x.is_finite(), "ln of {x}");
    // x = m * 2^e with m in [1, 2)
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // ln(m) = 2 atanh(t), t = (m-1)/(m+1) in [0, 1/3): the series converges fast.
    let t = (mantissa - 1.0) / (mantissa + 1.0);
    let t2 = t * t;
    let mut term = t;
    let mut sum = 0.0;
    let mut k = 1.0;
    for _ in 0..40 {
        let next = sum + term / k;
        // Terms only shrink and the sum only grows, so once one leaves the sum unchanged
        // (at most half an ulp) every later one does too: stopping here gives the same bits
        // as running all 40, in about a third of the divisions.
        if next == sum {
            break;
        }
        sum = next;
        term *= t2;
        k += 2.0;
    }
    const LN_2: f64 = core::f64::consts::LN_2;
    2.0 * sum + exponent as f64 * LN_2
}

/// A sample of an exponential distribution with the given mean, from a uniform `u` in [0, 1).
pub fn exponential(mean: f64, u: f64) -> f64 {
    assert!((0.0..1.0).contains(&u));
    -mean * ln(1.0 - u)
}

/// `exponential(mean, u).min(cap) as u64`, the very same whole number, mostly without the
/// series. [`ln_guess`] is within 1e-13 of the series; where the whole number is the same at
/// both ends of a margin ten thousand times wider than that, it is the answer, and the series
/// decides the rest (a few draws in a million). Network latencies are drawn this way, two per
/// message, so the series' dozen divisions were a sixth of the engine's time.
pub fn exponential_whole(mean: f64, u: f64, cap: f64) -> u64 {
    assert!((0.0..1.0).contains(&u));
    let guess = -mean * ln_guess(1.0 - u);
    let margin = (mean + guess.abs()) * GUESS_MARGIN;
    let (low, high) = ((guess - margin).min(cap), (guess + margin).min(cap));
    let whole =
        if low >= 0.0 && low as u64 == high as u64 { high as u64 } else { exponential(mean, u).min(cap) as u64 };
    debug_assert_eq!(whole, exponential(mean, u).min(cap) as u64, "the guess of exponential({mean}, {u})");
    whole
}

/// How far, relative to the values involved, a guessed exponential may be from the series'
/// before the series is asked: ten thousand times the guess's error.
const GUESS_MARGIN: f64 = 1e-9;

/// Points of the guessing logarithm's table: `1 + j / LN_TABLE_POINTS` for each `j`.
const LN_TABLE_POINTS: usize = 128;

/// For each table point `c`: `1 / c` rounded and `ln(c)` from the series, both from basic
/// operations only, so the table is the same on every platform.
static LN_TABLE: std::sync::LazyLock<[(f64, f64); LN_TABLE_POINTS]> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|j| {
        let c = 1.0 + j as f64 / LN_TABLE_POINTS as f64;
        (1.0 / c, ln(c))
    })
});

/// `ln(x)` for `x > 0` to within 1e-13, with no division and a short dependency chain: the
/// mantissa times the inverse of the nearest table point below it is `1 + r` with
/// `0 <= r < 1/128`, and five terms of ln(1 + r)'s series (`r^6 / 6` < 1e-13 is what is left
/// out), grouped in pairs so the multiplications overlap.
fn ln_guess(x: f64) -> f64 {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    if exponent == -1023 || !x.is_finite() || x <= 0.0 {
        // Subnormal, zero, negative or not finite: the series says what to do.
        return ln(x);
    }
    let mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let point = ((bits >> (52 - 7)) & (LN_TABLE_POINTS as u64 - 1)) as usize;
    let (inverse, ln_point) = LN_TABLE[point];
    let r = mantissa * inverse - 1.0;
    let r2 = r * r;
    // r - r²/2 + r³/3 - r⁴/4 + r⁵/5 = (r - r²/2) + r³ (1/3 - r/4 + r²/5)
    let series = (r - 0.5 * r2) + r2 * r * ((1.0 / 3.0 - 0.25 * r) + 0.2 * r2);
    exponent as f64 * core::f64::consts::LN_2 + ln_point + series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_is_accurate() {
        for &x in &[1e-9, 0.001, 0.5, 1.0, 1.5, 2.0, 10.0, 12345.678] {
            let got = ln(x);
            let want = x.ln();
            assert!((got - want).abs() < 1e-12 * want.abs().max(1.0), "ln({x}) = {got}, want {want}");
        }
    }

    /// The series as first written, all 40 terms: the early stop must give the same bits.
    fn ln_all_terms(x: f64) -> f64 {
        let bits = x.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        let t = (mantissa - 1.0) / (mantissa + 1.0);
        let t2 = t * t;
        let (mut term, mut sum, mut k) = (t, 0.0, 1.0);
        for _ in 0..40 {
            sum += term / k;
            term *= t2;
            k += 2.0;
        }
        2.0 * sum + exponent as f64 * core::f64::consts::LN_2
    }

    #[test]
    fn ln_stops_early_with_the_same_bits() {
        let mut x = 1e-12;
        while x < 1e12 {
            assert_eq!(ln(x).to_bits(), ln_all_terms(x).to_bits(), "ln({x})");
            x *= 1.000_37;
        }
        // Every mantissa region, including the largest t, at one exponent; and 1 - u as the
        // exponential draws it.
        for i in 0..200_000u64 {
            let m = 1.0 + i as f64 / 200_000.0;
            assert_eq!(ln(m).to_bits(), ln_all_terms(m).to_bits(), "ln({m})");
            let u = 1.0 - (i as f64 + 0.5) / 200_000.0;
            assert_eq!(ln(u).to_bits(), ln_all_terms(u).to_bits(), "ln({u})");
        }
    }

    /// The guess stays within 1e-13 of the series over every table point and far exponents.
    #[test]
    fn the_guessing_ln_is_close_to_the_series() {
        let mut x = 1e-300;
        while x < 1e300 {
            assert!((ln_guess(x) - ln(x)).abs() < 1e-13 * ln(x).abs().max(1.0), "ln_guess({x})");
            x *= 1.003;
        }
        for i in 1..=1_000_000u64 {
            let x = i as f64 / 1_000_000.0;
            assert!((ln_guess(x) - ln(x)).abs() < 1e-13, "ln_guess({x})");
        }
    }

    /// Whole latencies as the network draws them: the same number as the series gives, on
    /// draws spread over [0, 1) and on draws made to land next to a whole number.
    #[test]
    fn exponential_whole_is_the_series_whole_number() {
        let series = |mean: f64, u: f64, cap: f64| exponential(mean, u).min(cap) as u64;
        for mean in [1.0, 4_500.0, 123_456.0] {
            let cap = mean * 50.0;
            for i in 0..200_000u64 {
                let u = i as f64 / 200_000.0;
                assert_eq!(exponential_whole(mean, u, cap), series(mean, u, cap), "mean {mean}, u {u}");
            }
            // u for which the exponential is a whole number k, and its neighbours one ulp away.
            for k in 1..2_000u64 {
                let u = 1.0 - (-(k as f64) / mean).exp();
                for u in [f64::from_bits(u.to_bits() - 1), u, f64::from_bits(u.to_bits() + 1)] {
                    if (0.0..1.0).contains(&u) {
                        assert_eq!(exponential_whole(mean, u, cap), series(mean, u, cap), "mean {mean}, u {u}");
                    }
                }
            }
        }
        // The cap, and the largest draw.
        let largest = 1.0 - f64::EPSILON / 2.0;
        assert_eq!(exponential_whole(10.0, largest, 500.0), series(10.0, largest, 500.0));
        assert_eq!(exponential_whole(10.0, 0.999_999_999, 50.0), 50, "capped");
    }

    #[test]
    fn exponential_mean_is_close() {
        let n = 10_000;
        let mean: f64 = (0..n).map(|i| exponential(5.0, i as f64 / n as f64)).sum::<f64>() / n as f64;
        assert!((mean - 5.0).abs() < 0.1, "mean {mean}");
    }
}
