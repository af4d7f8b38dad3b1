//! `LlamaEngine`: llama.cpp in-process. A handle to one dedicated OS thread ([`worker`]) that
//! owns the context (llama.cpp contexts are not thread-safe) with N sequence slots; the model
//! itself is shared read-only so prompts can be measured (templated and tokenized) on the
//! caller's thread without a round trip.

mod active;
mod gguf;
mod logs;
pub mod openmp;
mod prefix;
mod prompts;
mod state;
mod worker;

pub(crate) use active::sampler_for;
pub(crate) use worker::UBATCH;

/// Where a bot's saved conversation states live, under its storage directory.
pub const STATE_DIR: &str = "kv-state";

/// Delete the saved states of `session` under the storage directory `storage` (for commands
/// that erase without loading a model); returns how many.
pub fn erase_saved_states(storage: &std::path::Path, session: crate::chat::SessionId) -> usize {
    state::remove_prefix(
        &storage.join(STATE_DIR),
        &super::session_cache_prefix(session),
    )
}

use super::{EVENT_BUFFER, Engine, EngineError, EngineEvent, EventStream, GenerateRequest};
use crate::chat::ChatMessage;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc;

/// How to load and run a model (bot YAML `engine:` section plus the resolved model path).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// Short name for status bars (registry name or file stem).
    pub model_name: String,
    /// CPU threads; `None` = number of physical cores.
    pub threads: Option<u32>,
    /// Context window per conversation slot, in tokens.
    pub context: u32,
    /// Concurrent conversations (sequence slots) in one context.
    pub slots: u32,
    /// Layers to offload to a GPU (used only when built with a GPU feature).
    pub gpu_layers: u32,
    /// Where per-session KV state is saved for warm resume (`None` disables it).
    pub state_dir: Option<PathBuf>,
    /// Total size cap of saved states, bytes (least recently used are evicted).
    pub state_cap_bytes: u64,
    /// Evaluate a conversation's next turn boundary while the engine is idle (on by default;
    /// off only to compare).
    pub prefill: bool,
    /// How long the engine waits, idle, before it saves the states that changed (0.4 s: not
    /// right after a reply, or the conversation's next message would wait for the write).
    /// Tests lengthen it to keep states in memory until shutdown.
    #[doc(hidden)]
    pub idle_save: Duration,
    /// For tests of the failure path: while above zero, each batch decode fails as if
    /// llama.cpp had returned an error (and counts down). Shared with clones of the settings.
    #[doc(hidden)]
    pub fail_decodes: Arc<AtomicU64>,
}

impl EngineSettings {
    /// Defaults for a model file: 4096-token context, one slot, physical cores.
    pub fn new(model_path: impl Into<PathBuf>, model_name: impl Into<String>) -> Self {
        Self {
            model_path: model_path.into(),
            model_name: model_name.into(),
            threads: None,
            context: 4096,
            slots: 1,
            gpu_layers: 0,
            state_dir: None,
            state_cap_bytes: 2 << 30,
            prefill: true,
            idle_save: Duration::from_millis(400),
            fail_decodes: Arc::default(),
        }
    }
}

/// A generation request as the worker sees it.
pub(crate) struct Job {
    req: GenerateRequest,
    tx: mpsc::Sender<EngineEvent>,
    submitted: std::time::Instant,
    /// Queue position last told to the requester (0 = never queued).
    announced: usize,
}

/// Messages to the inference thread.
pub(crate) enum Control {
    Generate(Job),
    /// Drop everything of the cache keys starting with `prefix` (an erased session), then
    /// answer on `done`.
    Forget {
        prefix: String,
        done: std_mpsc::Sender<usize>,
    },
    /// A request with cache key `key` is about to come, with the user message `text` when its
    /// prompt can be guessed: see [`worker`]'s head start.
    HeadStart {
        key: String,
        text: Option<String>,
    },
    /// Save the changed states now, as once idle, then answer on `done`.
    SaveNow {
        done: std_mpsc::Sender<()>,
    },
    Shutdown,
}

/// Handle to the inference thread. Share it behind an `Arc`; dropping the last handle stops the
/// thread after saving warm-resume state.
pub struct LlamaEngine {
    settings: EngineSettings,
    model: Arc<LlamaModel>,
    template: LlamaChatTemplate,
    control: Mutex<std_mpsc::Sender<Control>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    threads: u32,
    ahead: Arc<Ahead>,
    /// Token counts of single templated messages ([`Engine::count_tokens`] on one message),
    /// by a hash of role and text: fitting a prompt into the window counts every history
    /// message at every turn, and a 30-turn conversation re-tokenized 60 unchanged messages.
    counts: Mutex<HashMap<u64, u32>>,
    /// The last whole prompts tokenized, shared with the inference thread.
    prompts: Arc<prompts::PromptTokens>,
}

/// What the inference thread evaluated ahead of requests, counted for tests and the bench.
#[derive(Default)]
pub(crate) struct Ahead {
    /// Turn-boundary tokens pre-filled while idle.
    pub(crate) prefilled: AtomicU64,
    /// Head starts claimed by their request.
    pub(crate) head_starts: AtomicU64,
    /// Saved states loaded on a hint, before their request came.
    pub(crate) restored_early: AtomicU64,
    /// Slot states copied to memory instead of a file (the worker's `park`).
    pub(crate) parked: AtomicU64,
    /// Parked states loaded back from memory.
    pub(crate) unparked: AtomicU64,
    /// Parked states written to disk once idle.
    pub(crate) parked_written: AtomicU64,
}

/// Entries kept in [`LlamaEngine::counts`] before it starts over.
const COUNTS_KEPT: usize = 8192;

/// llama.cpp's backend can be initialised once per process; every engine shares it.
pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            logs::route_to_tracing();
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Generation(format!("could not start llama.cpp: {e}")))
}

/// Physical cores (llama.cpp is slower with one thread per hyper-thread), through `num_cpus`,
/// which reads each OS's own topology (Linux, macOS, Windows, the BSDs) and falls back to the
/// logical count where it cannot tell. Never more than the CPUs this process may use (a
/// container's limit or an affinity mask).
pub fn physical_cores() -> u32 {
    let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
    num_cpus::get_physical().clamp(1, usable) as u32
}

impl LlamaEngine {
    /// Load the model and start the inference thread. Fails with a message naming the file and
    /// the reason for a missing, empty, truncated or non-GGUF file. Blocking: call it from a
    /// blocking thread in async code.
    pub fn load(settings: EngineSettings) -> Result<Self, EngineError> {
        let path = &settings.model_path;
        let shown = path.display().to_string();
        gguf::check_header(path, &settings.model_name)?;
        let backend = backend()?;
        let threads = settings.threads.unwrap_or_else(physical_cores).max(1);
        let params = LlamaModelParams::default().with_n_gpu_layers(settings.gpu_layers);
        let (model, log) = logs::capture(|| LlamaModel::load_from_file(backend, path, &params));
        let model = model.map_err(|e| EngineError::ModelLoad {
            path: shown.clone(),
            reason: log.unwrap_or_else(|| e.to_string()),
        })?;
        let model = Arc::new(model);
        let template = model
            .chat_template(None)
            .or_else(|_| LlamaChatTemplate::new("chatml"))
            .map_err(|e| EngineError::ModelLoad {
                path: shown.clone(),
                reason: format!("no usable chat template: {e}"),
            })?;
        let model_id = gguf::model_id(path).map_err(|e| EngineError::ModelLoad {
            path: shown.clone(),
            reason: e.to_string(),
        })?;

        let (control_tx, control_rx) = std_mpsc::channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let ahead = Arc::new(Ahead::default());
        let prompts = Arc::new(prompts::PromptTokens::default());
        let worker = worker::Worker::new(
            model.clone(),
            template.clone(),
            &settings,
            threads,
            model_id,
            ahead.clone(),
            prompts.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("parlor-inference".into())
            .spawn(move || worker.run(backend, control_rx, ready_tx))
            .map_err(|e| {
                EngineError::Generation(format!("could not start the inference thread: {e}"))
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                let _ = thread.join();
                return Err(EngineError::ModelLoad {
                    path: shown,
                    reason,
                });
            }
            Err(_) => {
                let _ = thread.join();
                return Err(EngineError::ModelLoad {
                    path: shown,
                    reason: "the inference thread stopped while creating the context".into(),
                });
            }
        }
        tracing::info!(model = %shown, threads, context = settings.context, slots = settings.slots, "model loaded");
        Ok(Self {
            settings,
            model,
            template,
            control: Mutex::new(control_tx),
            thread: Mutex::new(Some(thread)),
            threads,
            ahead,
            counts: Mutex::new(HashMap::new()),
            prompts,
        })
    }

    /// Send `c` to the inference thread; when it has stopped, the error hands `c` back (a job's
    /// requester is then told).
    #[allow(clippy::result_large_err)]
    fn send(&self, c: Control) -> Result<(), std_mpsc::SendError<Control>> {
        self.control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(c)
    }

    /// Tokens evaluated ahead of time while idle (the next turns' boundaries) since loading.
    pub fn prefilled_tokens(&self) -> u64 {
        self.ahead.prefilled.load(Ordering::Relaxed)
    }

    /// Turns whose prompt was evaluated before their request came, and whose first token was
    /// sampled from it (see the worker's head start), since loading.
    pub fn head_starts(&self) -> u64 {
        self.ahead.head_starts.load(Ordering::Relaxed)
    }

    /// Saved conversation states loaded on a hint ([`Engine::expect_turn`]) before their
    /// request came, since loading.
    pub fn restored_early(&self) -> u64 {
        self.ahead.restored_early.load(Ordering::Relaxed)
    }

    /// (parked, loaded back from memory, written to disk) since loading: states of
    /// conversations whose slot was given to another, copied to memory instead of a file and
    /// written to disk once the engine is idle (see the worker's `park`).
    pub fn parked_states(&self) -> (u64, u64, u64) {
        (
            self.ahead.parked.load(Ordering::Relaxed),
            self.ahead.unparked.load(Ordering::Relaxed),
            self.ahead.parked_written.load(Ordering::Relaxed),
        )
    }

    /// Save the changed states now, as the engine does once idle for
    /// [`EngineSettings::idle_save`], and return when they are written (tests).
    #[doc(hidden)]
    pub fn save_now(&self) {
        let (done, finished) = std_mpsc::channel();
        if self.send(Control::SaveNow { done }).is_ok() {
            let _ = finished.recv();
        }
    }

    /// CPU threads used for decoding.
    pub fn threads(&self) -> u32 {
        self.threads
    }

    /// The settings the engine was loaded with.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The loaded model (for benchmarks that drive llama-cpp-2 directly).
    pub fn model(&self) -> &Arc<LlamaModel> {
        &self.model
    }

    /// The templated, tokenized prompt for `messages` (with the assistant prefix).
    pub fn tokenize_prompt(
        &self,
        messages: &[ChatMessage],
    ) -> Result<Vec<LlamaToken>, EngineError> {
        tokenize_prompt(&self.model, &self.template, messages)
    }
}

/// Check the saved state of the conversation `key` in `state_dir` for the model file
/// `model_path` ahead of its load ([`state::verify_ahead`]): for a front end that knows the
/// conversation while the model is still loading. Returns whether it passed.
pub fn verify_state_ahead(
    state_dir: &std::path::Path,
    model_path: &std::path::Path,
    key: &str,
) -> bool {
    gguf::model_id(model_path).is_ok_and(|id| state::verify_ahead(state_dir, &id, key))
}

/// Apply the chat template and tokenize (shared by the handle and the worker).
pub(crate) fn tokenize_prompt(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
) -> Result<Vec<LlamaToken>, EngineError> {
    let text = render_prompt(model, template, messages)?;
    Ok(model.vocab().tokenize(text.as_bytes(), true, true))
}

/// The prompt text of `messages`: the chat template applied, with the assistant prefix.
pub(crate) fn render_prompt(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
) -> Result<String, EngineError> {
    let chat = messages
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.as_str().to_string(), m.content.replace('\0', "")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EngineError::Generation(format!("bad message: {e}")))?;
    model
        .apply_chat_template(template, &chat, true)
        .map_err(|e| EngineError::Generation(format!("chat template failed: {e}")))
}

impl Engine for LlamaEngine {
    fn generate(&self, req: GenerateRequest) -> EventStream {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let job = Job {
            req,
            tx,
            submitted: std::time::Instant::now(),
            announced: 0,
        };
        let sent = self.send(Control::Generate(job));
        if let Err(std_mpsc::SendError(Control::Generate(job))) = sent {
            let _ = job.tx.try_send(EngineEvent::Failed(EngineError::Stopped));
        }
        rx
    }

    fn count_tokens(&self, messages: &[ChatMessage]) -> Result<u32, EngineError> {
        let [one] = messages else {
            let tokens = self
                .prompts
                .tokenize(&self.model, &self.template, messages)?;
            return Ok(tokens.len() as u32);
        };
        let key = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (one.role, &one.content).hash(&mut h);
            h.finish()
        };
        let counts = || self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&n) = counts().get(&key) {
            return Ok(n);
        }
        let n = self.tokenize_prompt(messages)?.len() as u32;
        let mut counts = counts();
        if counts.len() >= COUNTS_KEPT {
            counts.clear();
        }
        counts.insert(key, n);
        Ok(n)
    }

    fn context_window(&self) -> u32 {
        self.settings.context
    }

    fn model_name(&self) -> String {
        self.settings.model_name.clone()
    }

    fn expect_turn(&self, cache_key: &str, text: Option<&str>) {
        let _ = self.send(Control::HeadStart {
            key: cache_key.to_string(),
            text: text.map(str::to_string),
        });
    }

    fn forget(&self, session: crate::chat::SessionId) -> usize {
        let prefix = super::session_cache_prefix(session);
        let (done, finished) = std_mpsc::channel::<usize>();
        let sent = self.send(Control::Forget {
            prefix: prefix.clone(),
            done,
        });
        let mut files = 0;
        if sent.is_ok() {
            // The thread answers after it dropped the slot, the queued work and the files.
            files = finished.recv().unwrap_or(0);
        }
        // Kept prompts hold conversation text; cleared once the thread dropped the slot, so it
        // cannot add them back.
        self.prompts.clear();
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // Also when the thread has stopped: its files must go all the same.
        if let Some(dir) = &self.settings.state_dir {
            files += state::remove_prefix(dir, &prefix);
        }
        files
    }

    fn close(&self) {
        let _ = self.send(Control::Shutdown);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for LlamaEngine {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    /// On Linux, the distinct (package, core) pairs of /proc/cpuinfo, within the usable CPUs.
    #[test]
    fn physical_cores_count_cores_not_hyper_threads() {
        let usable = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let n = super::physical_cores();
        assert!((1..=usable).contains(&n), "{n} of {usable}");
        let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let mut cores = std::collections::HashSet::new();
        let mut package = "";
        for line in info.lines() {
            let value = || line.split(':').nth(1).unwrap_or("").trim();
            if line.starts_with("physical id") {
                package = value();
            } else if line.starts_with("core id") {
                cores.insert((package, value()));
            }
        }
        if !cores.is_empty() {
            assert_eq!(n, (cores.len() as u32).min(usable));
        }
    }
}
