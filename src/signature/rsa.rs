//! RSA signature verification (RFC 8017 RSASSA-PKCS1-v1_5 and RSASSA-PSS) with a
//! verify-only Montgomery exponentiation on 32-bit limbs.
//!
//! Why not the `rsa` crate jwt-compact uses: its `num-bigint-dig` arithmetic works on 64-bit
//! limbs, whose 64×64→128-bit products WebAssembly has no instruction for, so every one is
//! emulated; a 32×32→64 product is a single `i64.mul`. Verification handles only public data
//! (the key, the signature, the message), so variable-time arithmetic leaks nothing.
//!
//! Everything is checked by the Wycheproof PKCS#1 and PSS vectors (`tests/wycheproof.rs`) and
//! by a differential test against the `rsa` crate.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// The hash of an RS*/PS* algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, data: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(data: &[&[u8]]) -> Vec<u8> {
            let mut hasher = D::new();
            for part in data {
                hasher.update(part);
            }
            hasher.finalize().to_vec()
        }
        match self {
            Self::Sha256 => run::<Sha256>(data),
            Self::Sha384 => run::<Sha384>(data),
            Self::Sha512 => run::<Sha512>(data),
        }
    }

    fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// DER of `DigestInfo` up to the digest (RFC 8017 §9.2 note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// Why a modulus and exponent are not a usable public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaKeyError {
    EvenModulus,
    BadExponent,
}

impl std::fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EvenModulus => f.write_str("the RSA modulus is even"),
            Self::BadExponent => {
                f.write_str("the RSA public exponent must be odd, at least 3 and below 2^32")
            }
        }
    }
}

/// An RSA public key with its Montgomery constants, computed once per key.
#[derive(Clone)]
pub struct RsaVerifier {
    /// Modulus, little-endian 32-bit limbs.
    n: Vec<u32>,
    /// −n⁻¹ mod 2³².
    n0_inv: u32,
    /// R² mod n, R = 2^(32·limbs), in plain form (for entering Montgomery form).
    r2: Vec<u32>,
    exponent: u64,
    /// Modulus length in bytes and bits.
    bytes: usize,
    bits: usize,
}

impl std::fmt::Debug for RsaVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaVerifier({} bits, e = {})", self.bits, self.exponent)
    }
}

impl RsaVerifier {
    /// A key from its big-endian modulus and exponent (leading zero bytes allowed). The
    /// exponent must be odd, at least 3 and below 2³² (issuers use 65537; the `rsa` crate
    /// stops at 2³³, BoringSSL at 33 bits); the modulus odd.
    pub fn new(modulus: &[u8], exponent: &[u8]) -> Result<Self, RsaKeyError> {
        let n = limbs_from_be(modulus);
        let bits = bit_length(&n);
        if !n.first().is_some_and(|low| low & 1 == 1) {
            return Err(RsaKeyError::EvenModulus);
        }
        let exponent = exponent
            .iter()
            .try_fold(0u64, |acc, &byte| {
                acc.checked_mul(256).map(|acc| acc | u64::from(byte))
            })
            .filter(|&e| e >= 3 && e & 1 == 1 && e < (1 << 32))
            .ok_or(RsaKeyError::BadExponent)?;
        let n = trim(n);
        let n0_inv = {
            let n0 = n.first().copied().unwrap_or(1);
            let mut inverse: u32 = 1;
            for _ in 0..5 {
                inverse = inverse.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inverse)));
            }
            inverse.wrapping_neg()
        };
        let r2 = r_squared(&n);
        Ok(RsaVerifier {
            bytes: bits.div_ceil(8),
            bits,
            n,
            n0_inv,
            r2,
            exponent,
        })
    }

    /// `signature^e mod n` as a big-endian number of the modulus's byte length, or `None`
    /// when the signature has another length or is not below the modulus (RFC 8017 §5.2.2).
    fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.bytes {
            return None;
        }
        let mut s = limbs_from_be(signature);
        s.resize(self.n.len(), 0);
        if compare(&s, &self.n) != std::cmp::Ordering::Less {
            return None;
        }
        let base = self.mont_mul(&s, &self.r2); // s·R mod n
        let mut x = base.clone();
        let top = 63 - self.exponent.leading_zeros();
        for bit in (0..top).rev() {
            x = self.mont_square(&x);
            if self.exponent >> bit & 1 == 1 {
                x = self.mont_mul(&x, &base);
            }
        }
        let mut one = vec![0u32; self.n.len()];
        if let Some(low) = one.first_mut() {
            *low = 1;
        }
        let plain = self.mont_mul(&x, &one);
        Some(limbs_to_be(&plain, self.bytes))
    }

    /// Montgomery product a·b·R⁻¹ mod n, for a, b < n.
    fn mont_mul(&self, a: &[u32], b: &[u32]) -> Vec<u32> {
        self.reduce(product(a, b))
    }

    /// Montgomery square a²·R⁻¹ mod n, for a < n: each cross product is computed once and
    /// doubled, which saves about a quarter of the multiplications of a general product.
    fn mont_square(&self, a: &[u32]) -> Vec<u32> {
        self.reduce(square(a))
    }

    /// Montgomery reduction of a 2·len-limb product t < n·R: t·R⁻¹ mod n.
    #[allow(clippy::indexing_slicing)] // every index is below 2·len + 1, the length of t
    fn reduce(&self, mut t: Vec<u32>) -> Vec<u32> {
        let len = self.n.len();
        t.resize(2 * len + 1, 0);
        for i in 0..len {
            let m = t[i].wrapping_mul(self.n0_inv);
            let mut carry = 0u64;
            for (j, &nj) in self.n.iter().enumerate() {
                let sum = u64::from(t[i + j]) + u64::from(m) * u64::from(nj) + carry;
                t[i + j] = sum as u32;
                carry = sum >> 32;
            }
            let mut k = i + len;
            while carry != 0 && k < t.len() {
                let sum = u64::from(t[k]) + carry;
                t[k] = sum as u32;
                carry = sum >> 32;
                k += 1;
            }
        }
        let mut result = t.split_off(len);
        if result.last().is_some_and(|&high| high != 0)
            || compare(result.get(..len).unwrap_or_default(), &self.n) != std::cmp::Ordering::Less
        {
            subtract(&mut result, &self.n);
        }
        result.truncate(len);
        result
    }
    /// RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2) of `message` hashed with `hash`.
    pub fn verify_pkcs1v15(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let Some(em) = self.public_op(signature) else {
            return false;
        };
        let digest = hash.digest(&[message]);
        let prefix = hash.digest_info_prefix();
        let t_len = prefix.len() + digest.len();
        if self.bytes < t_len + 11 {
            return false;
        }
        let mut expected = Vec::with_capacity(self.bytes);
        expected.extend_from_slice(&[0x00, 0x01]);
        expected.resize(self.bytes - t_len - 1, 0xff);
        expected.push(0x00);
        expected.extend_from_slice(prefix);
        expected.extend_from_slice(&digest);
        em == expected
    }

    /// RSASSA-PSS verification (RFC 8017 §8.1.2, §9.1.2) with MGF1 over the same hash and a
    /// salt as long as the hash, as JWS requires (RFC 7518 §3.5).
    pub fn verify_pss(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let Some(m) = self.public_op(signature) else {
            return false;
        };
        let em_bits = self.bits - 1;
        let em_len = em_bits.div_ceil(8);
        let h_len = hash.len();
        let s_len = h_len;
        // m has the modulus's length; EM is its last em_len bytes, any byte before them 0.
        let Some((leading, em)) = m.split_at_checked(m.len() - em_len) else {
            return false;
        };
        if leading.iter().any(|&byte| byte != 0) || em_len < h_len + s_len + 2 {
            return false;
        }
        let Some((masked_db, rest)) = em.split_at_checked(em_len - h_len - 1) else {
            return false;
        };
        let Some((h, trailer)) = rest.split_at_checked(h_len) else {
            return false;
        };
        if trailer != [0xbc] {
            return false;
        }
        let unused_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8.checked_shr(unused_bits as u32).unwrap_or(0);
        if masked_db
            .first()
            .is_some_and(|&first| first & !top_mask != 0)
        {
            return false;
        }
        let mut db = mgf1(hash, h, masked_db.len());
        for (byte, mask) in db.iter_mut().zip(masked_db) {
            *byte ^= mask;
        }
        if let Some(first) = db.first_mut() {
            *first &= top_mask;
        }
        let Some((padding, rest)) = db.split_at_checked(em_len - h_len - s_len - 2) else {
            return false;
        };
        let Some((separator, salt)) = rest.split_first() else {
            return false;
        };
        if padding.iter().any(|&byte| byte != 0) || *separator != 0x01 {
            return false;
        }
        let m_hash = hash.digest(&[message]);
        hash.digest(&[&[0u8; 8], &m_hash, salt]) == h
    }
}

/// The schoolbook product of two len-limb numbers, 2·len limbs.
#[allow(clippy::indexing_slicing)] // i + j < 2·len, the length of out
fn product(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = vec![0u32; a.len() + b.len()];
    for (i, &ai) in a.iter().enumerate() {
        let mut carry = 0u64;
        for (j, &bj) in b.iter().enumerate() {
            let sum = u64::from(out[i + j]) + u64::from(ai) * u64::from(bj) + carry;
            out[i + j] = sum as u32;
            carry = sum >> 32;
        }
        out[i + b.len()] = carry as u32;
    }
    out
}

/// a², 2·len limbs: the cross products a\[i\]·a\[j\] (i < j) once, doubled, plus the squares.
#[allow(clippy::indexing_slicing)] // every index is below 2·len, the length of out
fn square(a: &[u32]) -> Vec<u32> {
    let len = a.len();
    let mut out = vec![0u32; 2 * len];
    for i in 0..len {
        let ai = u64::from(a[i]);
        let mut carry = 0u64;
        for j in i + 1..len {
            let sum = u64::from(out[i + j]) + ai * u64::from(a[j]) + carry;
            out[i + j] = sum as u32;
            carry = sum >> 32;
        }
        out[i + len] = carry as u32;
    }
    // Double the cross products.
    let mut top = 0u32;
    for limb in out.iter_mut() {
        let next = *limb >> 31;
        *limb = *limb << 1 | top;
        top = next;
    }
    // Add the squares a[i]² at position 2i.
    let mut carry = 0u64;
    for i in 0..len {
        let square = u64::from(a[i]) * u64::from(a[i]);
        let low = u64::from(out[2 * i]) + (square & 0xffff_ffff) + carry;
        out[2 * i] = low as u32;
        let high = u64::from(out[2 * i + 1]) + (square >> 32) + (low >> 32);
        out[2 * i + 1] = high as u32;
        carry = high >> 32;
    }
    out
}

/// MGF1 (RFC 8017 §B.2.1).
fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.len());
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend(hash.digest(&[seed, &counter.to_be_bytes()]));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

fn limbs_from_be(bytes: &[u8]) -> Vec<u32> {
    bytes
        .rchunks(4)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u32, |acc, &byte| acc << 8 | u32::from(byte))
        })
        .collect()
}

fn limbs_to_be(limbs: &[u32], len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = limbs
        .iter()
        .rev()
        .flat_map(|limb| limb.to_be_bytes())
        .collect();
    let excess = bytes.len().saturating_sub(len);
    bytes.drain(..excess);
    while bytes.len() < len {
        bytes.insert(0, 0);
    }
    bytes
}

fn trim(mut limbs: Vec<u32>) -> Vec<u32> {
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    limbs
}

fn bit_length(limbs: &[u32]) -> usize {
    limbs.iter().rposition(|&limb| limb != 0).map_or(0, |top| {
        top * 32 + 32
            - limbs
                .get(top)
                .map_or(32, |limb| limb.leading_zeros() as usize)
    })
}

fn compare(a: &[u32], b: &[u32]) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

/// `a -= n` (a has at least as many limbs as n; the result must not be negative).
fn subtract(a: &mut [u32], n: &[u32]) {
    let mut borrow = 0i64;
    for (i, limb) in a.iter_mut().enumerate() {
        let diff = i64::from(*limb) - i64::from(n.get(i).copied().unwrap_or(0)) - borrow;
        *limb = diff as u32;
        borrow = i64::from(diff < 0);
    }
}

/// R² mod n by doubling 1 modulo n, 2·32·limbs times.
fn r_squared(n: &[u32]) -> Vec<u32> {
    let len = n.len();
    let mut r = vec![0u32; len + 1];
    if let Some(low) = r.first_mut() {
        *low = 1;
    }
    for _ in 0..2 * 32 * len {
        let mut carry = 0u32;
        for limb in r.iter_mut() {
            let next = *limb >> 31;
            *limb = *limb << 1 | carry;
            carry = next;
        }
        if r.last().is_some_and(|&high| high != 0)
            || compare(r.get(..len).unwrap_or_default(), n) != std::cmp::Ordering::Less
        {
            subtract(&mut r, n);
        }
    }
    r.truncate(len);
    r
}
