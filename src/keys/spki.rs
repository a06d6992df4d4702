//! Public keys from PEM files and X.509 certificates, checked against the
//! algorithm the config pins (key type, curve, RSA size, certificate dates).

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::{PublicKey, RSAPublicKey};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::KeyError;

/// RSA keys below this size are refused; they are factorable in practice.
pub const MIN_RSA_BITS: usize = 2048;

/// A public key found in a PEM file, with a note of where it came from.
pub struct Found {
    pub key: DecodingKey,
    /// The certificate's subject, when it came from one.
    pub subject: Option<String>,
}

/// Reads the first `PUBLIC KEY`, `RSA PUBLIC KEY` or `CERTIFICATE` block.
pub fn from_pem(alg: Algorithm, pem: &[u8], allow_expired: bool) -> Result<Found, KeyError> {
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| KeyError::NotPem(e.to_string()))?;
        match block.label.as_str() {
            "PUBLIC KEY" => {
                let (_, spki) = SubjectPublicKeyInfo::from_der(&block.contents)
                    .map_err(|e| KeyError::BadPublicKey(e.to_string()))?;
                return Ok(Found {
                    key: from_spki(alg, &spki)?,
                    subject: None,
                });
            }
            "RSA PUBLIC KEY" => {
                if alg.family() != AlgorithmFamily::Rsa {
                    return Err(KeyError::NotRsaAlg(alg));
                }
                let (_, rsa) =
                    RSAPublicKey::from_der(&block.contents).map_err(|_| KeyError::MalformedRsa)?;
                check_rsa_size(rsa.key_size())?;
                return Ok(Found {
                    key: DecodingKey::from_rsa_der(&block.contents),
                    subject: None,
                });
            }
            "CERTIFICATE" => return from_certificate_der(alg, &block.contents, allow_expired),
            _ => continue,
        }
    }
    Err(KeyError::NoPublicKeyBlock)
}

/// The public key of a DER certificate, refused when the certificate is not
/// valid now (unless `allow_expired`).
pub fn from_certificate_der(
    alg: Algorithm,
    der: &[u8],
    allow_expired: bool,
) -> Result<Found, KeyError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| KeyError::BadCertificate(e.to_string()))?;
    let subject = cert.subject().to_string();
    let validity = cert.validity();
    if !allow_expired && !validity.is_valid() {
        return Err(KeyError::CertificateNotValidNow {
            subject,
            not_before: validity.not_before.to_string(),
            not_after: validity.not_after.to_string(),
        });
    }
    Ok(Found {
        key: from_spki(alg, cert.public_key())?,
        subject: Some(subject),
    })
}

fn check_rsa_size(bits: usize) -> Result<(), KeyError> {
    if bits < MIN_RSA_BITS {
        return Err(KeyError::RsaTooSmall(bits));
    }
    Ok(())
}

/// A `DecodingKey` for `alg` from a SubjectPublicKeyInfo, refusing a key of
/// another type or curve: a key is only ever used with its own algorithm.
pub fn from_spki(alg: Algorithm, spki: &SubjectPublicKeyInfo) -> Result<DecodingKey, KeyError> {
    let oid = &spki.algorithm.algorithm;
    let bits = spki.subject_public_key.data.as_ref();
    match alg.family() {
        AlgorithmFamily::Rsa => {
            if *oid != OID_PKCS1_RSAENCRYPTION {
                return Err(KeyError::WrongKeyType {
                    alg,
                    kind: "an RSA",
                    found: oid.to_string(),
                });
            }
            match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => check_rsa_size(rsa.key_size())?,
                _ => return Err(KeyError::MalformedRsa),
            }
            Ok(DecodingKey::from_rsa_der(bits))
        }
        AlgorithmFamily::Ec => {
            if *oid != OID_KEY_TYPE_EC_PUBLIC_KEY {
                return Err(KeyError::WrongKeyType {
                    alg,
                    kind: "an EC",
                    found: oid.to_string(),
                });
            }
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            let wanted = if alg == Algorithm::ES256 {
                OID_EC_P256
            } else {
                OID_NIST_EC_P384
            };
            if curve.as_ref() != Some(&wanted) {
                return Err(KeyError::WrongCurve {
                    alg,
                    curve: wanted.to_string(),
                });
            }
            Ok(DecodingKey::from_ec_der(bits))
        }
        AlgorithmFamily::Ed => {
            if *oid != OID_SIG_ED25519 || bits.len() != 32 {
                return Err(KeyError::NotEd25519);
            }
            Ok(DecodingKey::from_ed_der(bits))
        }
        AlgorithmFamily::Hmac => Err(KeyError::HmacPublicKey),
    }
}
