//! `hookbridge pki keygen | sign | verify`: an approver's keys, a signed approval of a CR, and its
//! check against trusted keys (see `hookbridge_worker::pki`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use hookbridge_shared::config::FileConfig;
use hookbridge_worker::change_requests::record::CrKey;
use hookbridge_worker::pki::approval::{self, SignedApproval};
use hookbridge_worker::pki::keys::{self, RSA_BITS};
use hookbridge_worker::pki::trust::TrustedKeys;
use hookbridge_worker::pki::{Algorithm, PkiError};
use secrecy::SecretString;

use crate::Failure;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AlgorithmArg {
    Rsa,
    Ed25519,
}

/// Where the private key's password comes from.
#[derive(Debug, clap::Args)]
pub struct PasswordArgs {
    /// A file whose first line is the password (else PKI_KEY_PASSWORD, else a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    #[arg(long, env = "PKI_KEY_PASSWORD", hide_env_values = true, hide = true)]
    pki_key_password: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum PkiCommand {
    /// Make an approver's key pair: <slug>.key (encrypted PKCS#8 PEM), <slug>.pub, <slug>.crt.
    Keygen {
        /// The approver (or role) the key is for, e.g. "Change Manager".
        #[arg(long)]
        name: String,
        #[arg(long)]
        output_dir: PathBuf,
        /// RSA key size: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 2048)]
        key_size: usize,
        #[arg(long, value_enum, default_value_t = AlgorithmArg::Rsa)]
        algorithm: AlgorithmArg,
        /// How long the certificate is valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Sign an approval of a CR: writes <CR>-signature.json.
    Sign {
        #[arg(long)]
        cr_id: String,
        #[arg(long)]
        private_key: PathBuf,
        /// Who approves (default: the key file's name).
        #[arg(long)]
        approver: Option<String>,
        #[arg(long, default_value = "Change Manager")]
        role: String,
        /// How long the approval holds: 7d, 12h, …
        #[arg(long, default_value = "7d")]
        expires: String,
        /// Where to write the signature file.
        #[arg(long, default_value = ".")]
        output_dir: PathBuf,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Check a signature file for a CR against the trusted keys; exit 1 with the reason.
    Verify {
        #[arg(long)]
        signature: PathBuf,
        #[arg(long)]
        cr_id: String,
        /// Trusted public keys / certificates (*.pub, *.crt), beside the config file's [pki]
        /// table.
        #[arg(long, env = "HOOKBRIDGE_PKI_TRUSTED_DIR")]
        trusted: Option<PathBuf>,
        /// The TOML configuration file whose [pki] table names trusted keys.
        #[arg(long = "config", env = "HOOKBRIDGE_CONFIG")]
        config: Option<PathBuf>,
    },
}

impl PasswordArgs {
    fn read(&self, confirm: bool) -> Result<SecretString, Failure> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::config(format!("--password-file {}: {e}", path.display())))?;
            let line = text.lines().next().unwrap_or_default().to_owned();
            return Ok(SecretString::from(line));
        }
        if let Some(password) = self.pki_key_password.clone().filter(|p| !p.is_empty()) {
            return Ok(SecretString::from(password));
        }
        if !std::io::stdin().is_terminal() {
            return Err(Failure::config(
                "no password: give --password-file or PKI_KEY_PASSWORD (no terminal to ask on)",
            ));
        }
        let first = rpassword::prompt_password("Private key password: ")
            .map_err(|e| Failure::config(format!("reading the password: {e}")))?;
        if confirm {
            let again = rpassword::prompt_password("Again: ")
                .map_err(|e| Failure::config(format!("reading the password: {e}")))?;
            if again != first {
                return Err(Failure::config("the passwords differ"));
            }
        }
        Ok(SecretString::from(first))
    }
}

fn pki_failure(e: PkiError) -> Failure {
    Failure::config(e)
}

pub fn run(command: PkiCommand) -> Result<(), Failure> {
    match command {
        PkiCommand::Keygen {
            name,
            output_dir,
            key_size,
            algorithm,
            days,
            password,
        } => {
            let algorithm = match algorithm {
                AlgorithmArg::Rsa => Algorithm::Rsa,
                AlgorithmArg::Ed25519 => Algorithm::Ed25519,
            };
            if algorithm == Algorithm::Rsa && !RSA_BITS.contains(&key_size) {
                return Err(Failure::config(format!(
                    "--key-size must be 2048, 3072 or 4096, not {key_size}"
                )));
            }
            let password = password.read(true)?;
            let written = keys::keygen(&name, &output_dir, algorithm, key_size, &password, days)
                .map_err(pki_failure)?;
            println!(
                "private key  {}  (encrypted; keep it secret)",
                written.private_key.display()
            );
            println!("public key   {}", written.public_key.display());
            println!(
                "certificate  {}  (put it in HOOKBRIDGE_PKI_TRUSTED_DIR)",
                written.certificate.display()
            );
            println!("key id       {}", written.key_id);
            Ok(())
        }
        PkiCommand::Sign {
            cr_id,
            private_key,
            approver,
            role,
            expires,
            output_dir,
            password,
        } => sign(
            &cr_id,
            &private_key,
            approver,
            &role,
            &expires,
            &output_dir,
            &password,
        ),
        PkiCommand::Verify {
            signature,
            cr_id,
            trusted,
            config,
        } => verify(&signature, &cr_id, trusted.as_deref(), config.as_deref()),
    }
}

fn sign(
    cr_id: &str,
    private_key: &Path,
    approver: Option<String>,
    role: &str,
    expires: &str,
    output_dir: &Path,
    password: &PasswordArgs,
) -> Result<(), Failure> {
    let key = CrKey::parse(cr_id).map_err(Failure::config)?;
    let valid_for = humantime::parse_duration(expires)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .filter(|d| *d > chrono::Duration::zero())
        .ok_or_else(|| {
            Failure::config(format!(
                "--expires {expires:?}: expected a duration like 7d or 12h"
            ))
        })?;
    let pem = std::fs::read_to_string(private_key)
        .map_err(|e| Failure::config(format!("--private-key {}: {e}", private_key.display())))?;
    let password = password.read(false)?;
    let signing_key = keys::open(&pem, &password).map_err(pki_failure)?;
    let approver = approver.unwrap_or_else(|| {
        private_key.file_stem().map_or_else(
            || "approver".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        )
    });
    let statement = approval::approve(key.as_str(), &approver, role, valid_for);
    let signed: SignedApproval = approval::sign(&signing_key, statement).map_err(pki_failure)?;
    let path = output_dir.join(format!("{key}-signature.json"));
    let text = serde_json::to_string_pretty(&signed).map_err(|e| Failure::config(e.to_string()))?;
    std::fs::write(&path, format!("{text}\n"))
        .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
    println!("{}", path.display());
    Ok(())
}

fn verify(
    signature: &Path,
    cr_id: &str,
    trusted: Option<&Path>,
    config: Option<&Path>,
) -> Result<(), Failure> {
    let key = CrKey::parse(cr_id).map_err(Failure::config)?;
    let text = std::fs::read_to_string(signature)
        .map_err(|e| Failure::config(format!("--signature {}: {e}", signature.display())))?;
    let file = config
        .map(FileConfig::load)
        .transpose()
        .map_err(Failure::config)?
        .unwrap_or_default();
    let trusted = TrustedKeys::load(trusted, &file.pki)
        .map_err(pki_failure)?
        .ok_or_else(|| {
            Failure::config(
                "no trusted keys: give --trusted (HOOKBRIDGE_PKI_TRUSTED_DIR) or a --config file with a [pki] table",
            )
        })?;
    let map = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => {
            return Err(Failure::check(format!(
                "{} is not a signature (not a JSON object)",
                signature.display()
            )));
        }
    };
    let ok = approval::verify(&map, key.as_str(), &trusted, chrono::Utc::now())
        .map_err(|reason| Failure::check(format!("{key}: signature invalid: {reason}")))?;
    println!(
        "{key}: signature valid — approved by {} as {} (key {}), until {}",
        ok.approver,
        ok.role,
        ok.key,
        ok.expires_at.to_rfc3339()
    );
    Ok(())
}
