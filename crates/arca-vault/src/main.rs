//! `arca-vault`: the key vault server.
//!
//! ```text
//! arca-vault serve --listen ADDR --database PATH|postgres://... --config FILE
//! arca-vault token issue --account ID [--ttl 30d] [--issuer NAME] --config FILE
//! arca-vault openapi
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use arca_vault::http::Server;
use arca_vault::http::auth::parse_ttl;
use arca_vault::http::config::Config;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "arca-vault",
    version,
    about = "The arca key vault: password-protected recovery of backup keys over OPAQUE, with a guess limit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the /v1 API. Prints `listening on URL` as its first line on stdout.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8443 (port 0 lets the system choose). Plain
        /// HTTP is only allowed on loopback; elsewhere configure [tls].
        #[arg(long, env = "ARCA_VAULT_LISTEN", default_value = "127.0.0.1:8443")]
        listen: String,
        /// The database: a PostgreSQL URL (postgres://USER[:PASSWORD]@HOST[:PORT]/DB, shared
        /// by any number of vault nodes; the schema is migrated at start), or the path of a
        /// SQLite file (created if absent; one node only).
        #[arg(long, env = "ARCA_VAULT_DATABASE")]
        database: String,
        /// The TOML config file (master key, token issuers, policy, rate limits, TLS).
        #[arg(long, env = "ARCA_VAULT_CONFIG")]
        config: PathBuf,
        /// Log format on stderr: text, or json (one object a line, for log collectors). The
        /// level comes from ARCA_VAULT_LOG (default `info`).
        #[arg(long, env = "ARCA_VAULT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Account tokens for a standalone deployment.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the OpenAPI document of the /v1 API.
    Openapi,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a token for ACCOUNT, signed by the first issuer with a signing key (an HS256
    /// secret, or an Ed25519 issuer with ed25519_private_key).
    Issue {
        #[arg(long)]
        account: String,
        /// Lifetime: 30d, 12h, 15m, 90s...
        #[arg(long, default_value = "30d")]
        ttl: String,
        /// Sign with this issuer instead of the first that can.
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long, env = "ARCA_VAULT_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARCA_VAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve {
            listen,
            database,
            config,
            log_format,
        } => {
            init_logs(log_format);
            let config = Config::load(&config)?;
            let server = Server::bind(&listen, &database, &config)?;
            let url = server.url();
            {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                writeln!(out, "listening on {url}")
                    .and_then(|_| out.flush())
                    .map_err(|e| format!("cannot write to stdout: {e}"))?;
            }
            tracing::info!(%url, database = %server.database(), "arca-vault serving");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(64)
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            rt.block_on(server.run())
                .map_err(|e| format!("the server stopped: {e}"))
        }
        Command::Token {
            command:
                TokenCommand::Issue {
                    account,
                    ttl,
                    issuer,
                    config,
                },
        } => {
            let config = Config::load(&config)?;
            let ttl = parse_ttl(&ttl)?;
            let token = config.issuers()?.issue(issuer.as_deref(), &account, ttl)?;
            println!("{token}");
            Ok(())
        }
        Command::Openapi => {
            let doc = serde_json::to_string_pretty(arca_vault::http::openapi::document())
                .map_err(|e| e.to_string())?;
            println!("{doc}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("arca-vault: {e}");
            ExitCode::FAILURE
        }
    }
}
