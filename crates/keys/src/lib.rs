//! Key pairs as Nova keeps them: a public key (OpenSSH text for `ssh`, a
//! PEM certificate for `x509`) and its fingerprint, either imported from
//! the caller or generated here with the private half returned once.
//!
//! Uploaded keys are hostile until parsed: an imported key is decoded in
//! full (a blob that does not parse as the algorithm it names is refused),
//! and the text stored is the one given, trimmed, never reformatted.
//! Fingerprints use Nova's spellings: the MD5 of an SSH key's wire blob and
//! the SHA-1 of a certificate's DER, as colon-separated hex pairs.

use md5::Digest as _;
use x509_cert::der::{DecodePem as _, Encode as _};

/// The kinds of key pair Nova knows (`type`, microversion 2.2+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// An OpenSSH public key (the default).
    Ssh,
    /// An x509 certificate (WinRM logins).
    X509,
}

impl KeyType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::X509 => "x509",
        }
    }

    /// Parse the API's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ssh" => Some(Self::Ssh),
            "x509" => Some(Self::X509),
            _ => None,
        }
    }
}

/// Why a key was refused or could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The uploaded public key does not parse (Nova's message; the parser's
    /// own words are logged by the caller, never shown).
    #[error("Keypair data is invalid: failed to generate fingerprint")]
    Invalid(String),
    /// Key generation failed (the system's random source or the encoder).
    #[error("could not generate a key pair: {0}")]
    Generate(String),
}

/// An imported public key, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// The key text as given (trimmed).
    pub text: String,
    /// Nova's fingerprint of it.
    pub fingerprint: String,
}

/// A generated key pair; the private key is returned to the caller once and
/// never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// Public half (OpenSSH line or PEM certificate).
    pub public_key: String,
    /// Private half (OpenSSH or PKCS#8 PEM).
    pub private_key: String,
    /// Nova's fingerprint of the public half.
    pub fingerprint: String,
}

/// Hex pairs joined by colons (`aa:bb:...`), Nova's fingerprint spelling.
fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parse and fingerprint a public key the caller uploads.
pub fn import(kind: KeyType, text: &str) -> Result<PublicKey, KeyError> {
    let text = text.trim();
    let fingerprint = match kind {
        KeyType::Ssh => {
            let key = ssh_key::PublicKey::from_openssh(text).map_err(|e| KeyError::Invalid(e.to_string()))?;
            let blob = key.to_bytes().map_err(|e| KeyError::Invalid(e.to_string()))?;
            colon_hex(&md5::Md5::digest(&blob))
        }
        KeyType::X509 => {
            let cert = x509_cert::Certificate::from_pem(text).map_err(|e| KeyError::Invalid(e.to_string()))?;
            let der = cert.to_der().map_err(|e| KeyError::Invalid(e.to_string()))?;
            colon_hex(&sha1::Sha1::digest(&der))
        }
    };
    Ok(PublicKey { text: text.to_string(), fingerprint })
}

/// Generate a key pair for `user_id` (an Ed25519 SSH key, or a self-signed
/// certificate naming the user, as Nova's WinRM certificates do).
pub fn generate(kind: KeyType, user_id: &str) -> Result<Generated, KeyError> {
    match kind {
        KeyType::Ssh => {
            let mut key = ssh_key::PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519)
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            key.set_comment("Generated-by-Stratus");
            let private_key =
                key.to_openssh(ssh_key::LineEnding::LF).map_err(|e| KeyError::Generate(e.to_string()))?.to_string();
            let public_key = key.public_key().to_openssh().map_err(|e| KeyError::Generate(e.to_string()))?;
            let fingerprint = import(KeyType::Ssh, &public_key).map_err(|e| KeyError::Generate(e.to_string()))?;
            Ok(Generated { public_key, private_key, fingerprint: fingerprint.fingerprint })
        }
        KeyType::X509 => {
            let key = rcgen::KeyPair::generate().map_err(|e| KeyError::Generate(e.to_string()))?;
            let mut params =
                rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| KeyError::Generate(e.to_string()))?;
            params.distinguished_name.push(rcgen::DnType::CommonName, user_id);
            let cert = params.self_signed(&key).map_err(|e| KeyError::Generate(e.to_string()))?;
            Ok(Generated {
                public_key: cert.pem(),
                private_key: key.serialize_pem(),
                fingerprint: colon_hex(&sha1::Sha1::digest(cert.der())),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RSA public key in OpenSSH form and its MD5 fingerprint as
    /// `ssh-keygen -E md5 -lf` prints it.
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQD+DZzjRJs9MIQ2/v+gm650eDm2EcLVRlBZElPWnBxuB6DtGy7x44xy4LPrRr/dZLTvpsMdyUs4rp9SAtDzh3Rm4sMufDHuHrSZZLywbZMwEks9Cri19QDl1dG4AzI0Du63CE1YXmCNdEuzgL+NLtSkY0DykFwtrKEBz8hwhju1Nw== test@stratus";
    const RSA_MD5: &str = "68:da:f7:65:de:61:a9:38:bb:29:68:42:51:f4:d2:1e";

    // Nova keypairs: an imported key keeps its text; its fingerprint is the MD5 of the blob.
    #[test]
    fn an_imported_ssh_key_is_fingerprinted_as_ssh_keygen_md5() {
        let k = import(KeyType::Ssh, &format!("  {RSA}\n")).expect("valid key");
        assert_eq!(k.text, RSA);
        assert_eq!(k.fingerprint, RSA_MD5);
    }

    // Tempest imports ECDSA (nistp384) keys; Nova takes every key type OpenSSH makes.
    #[test]
    fn ecdsa_and_ed25519_keys_import_with_their_md5_fingerprint() {
        for (key, md5) in [
            (
                "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBIorafsHmd9L/cbi2M55yLJxFrKA1pqJi3FqZELeAzEjgdTsRq0AOwpWQFHuwkVSBKzdHdwl5YsEj/oQy/LUqVsxt7rXTyTxHQh+73Esgq/GxDqwsxkLiBeS99/nx3a7oQ== t",
                "53:63:53:d0:98:53:97:35:7f:5c:05:53:fd:d6:87:42",
            ),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG8oSkfjjA7v4XyGHj/XNI6yTYOVsXUmkKKuU8QBebAc t",
                "29:97:2f:7a:0c:0e:3b:e5:bb:70:9d:52:56:1f:d2:8e",
            ),
        ] {
            assert_eq!(import(KeyType::Ssh, key).expect(key).fingerprint, md5);
        }
    }

    // Tempest test_keypair_create_with_invalid_pub_key / _when_public_key_bits_exceeds_maximum: 400.
    #[test]
    fn keys_that_do_not_parse_are_refused() {
        for bad in ["", "ssh-rsa", "ssh-rsa AAAAB3NzaC1yc2EA", "not a key", &format!("ssh-rsa {} x", "A".repeat(2048))]
        {
            assert!(matches!(import(KeyType::Ssh, bad), Err(KeyError::Invalid(_))), "{bad:?}");
        }
        assert!(matches!(import(KeyType::X509, RSA), Err(KeyError::Invalid(_))));
    }

    #[test]
    fn generated_keys_parse_back_with_their_fingerprint() {
        for kind in [KeyType::Ssh, KeyType::X509] {
            let g = generate(kind, "user-1").expect("generate");
            let back = import(kind, &g.public_key).expect("the public half imports");
            assert_eq!(back.fingerprint, g.fingerprint, "{kind:?}");
            assert!(g.private_key.contains("PRIVATE KEY"), "{kind:?}: {}", g.private_key);
            assert_ne!(generate(kind, "user-1").expect("again").fingerprint, g.fingerprint, "fresh key each time");
        }
    }
}
