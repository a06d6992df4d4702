//! PKCS#12 keystores and truststores (`.p12`), as Java's keytool writes
//! them: modern (AES-256, HMAC-SHA256) and legacy (RC2-40/3DES, SHA-1 MAC).
//! Only the certificate's public key is used; a private key in the store is
//! never touched.

use jsonwebtoken::Algorithm;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};

use super::spki::{self, Found};
use super::KeyError;

/// The public key of the certificate stored under `alias` (or of the only
/// entry, when the store has one and no alias is given).
pub fn public_key(
    alg: Algorithm,
    data: &[u8],
    password: &str,
    alias: Option<&str>,
    allow_expired: bool,
) -> Result<Found, KeyError> {
    let store = KeyStore::from_pkcs12(data, password, Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| KeyError::KeystoreUnreadable(e.to_string()))?;
    let aliases = || {
        store
            .entries()
            .map(|(a, _)| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let entry = match alias {
        Some(alias) => store.entry(alias).ok_or_else(|| KeyError::NoSuchAlias {
            alias: alias.to_owned(),
            aliases: aliases(),
        })?,
        None => {
            let mut entries = store.entries();
            match (entries.next(), entries.next()) {
                (Some((_, only)), None) => only,
                (None, _) => return Err(KeyError::KeystoreEmpty),
                _ => return Err(KeyError::AliasNeeded(aliases())),
            }
        }
    };
    let der = match entry {
        KeyStoreEntry::PrivateKeyChain(chain) => chain
            .certs()
            .first()
            .ok_or(KeyError::NoCertificateInEntry)?
            .as_der(),
        KeyStoreEntry::Certificate(cert) => cert.as_der(),
        KeyStoreEntry::Secret(_) => return Err(KeyError::SecretKeyEntry),
    };
    spki::from_certificate_der(alg, der, allow_expired)
}
