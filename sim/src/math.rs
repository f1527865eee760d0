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

    #[test]
    fn exponential_mean_is_close() {
        let n = 10_000;
        let mean: f64 = (0..n).map(|i| exponential(5.0, i as f64 / n as f64)).sum::<f64>() / n as f64;
        assert!((mean - 5.0).abs() < 0.1, "mean {mean}");
    }
}
