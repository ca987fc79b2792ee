//! One kind of background work: a [`Job`] advances in steps, each a bounded amount of work
//! (milliseconds), and a [`Worker`] drives it and reports on it — progress, the result, an
//! error (a panic, or a thread that could not start), cancellation, and a repaint request
//! when something changed (docs/architecture.md §1).
//!
//! Natively a worker runs its job on a low-priority thread ([`Worker::spawn`]). The same job
//! can instead be advanced in time slices by whoever owns the worker ([`Worker::inline`] and
//! [`Worker::pump`]). In a browser tab, where there are no threads, [`Worker::spawn`] hands
//! the job to a scheduler on the page's one thread instead, which the frame loop advances for
//! a share of each frame ([`pump_background`]).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use web_time::Instant;

/// Wakes the UI (egui's `request_repaint`), from any thread.
pub type Repaint = Arc<dyn Fn() + Send + Sync>;

/// A repaint request that does nothing (tests, the CLI).
pub fn no_repaint() -> Repaint {
    Arc::new(|| {})
}

/// What one step of a job came to.
#[derive(Debug, PartialEq)]
pub enum Step<T> {
    /// More to do; call again at once.
    Continue,
    /// Nothing to do for now (waiting for a command, say): call again after this long.
    Wait(Duration),
    /// Finished with this result.
    Done(T),
}

/// Work that advances in steps.
pub trait Job: Send + 'static {
    type Output: Send + 'static;
    /// Does a bounded amount of work; an `Err` ends the job with that message.
    fn step(&mut self, ctl: &Control) -> Result<Step<Self::Output>, String>;
}

/// A job made of one closure run in a single step (a computation that reports its own
/// progress and checks for cancellation through `Control`, e.g. the teaching views').
pub struct Once<F>(Option<F>);

impl<T, F> Once<F>
where
    F: FnOnce(&Control) -> Result<T, String> + Send + 'static,
    T: Send + 'static,
{
    pub fn new(f: F) -> Self {
        Self(Some(f))
    }
}

impl<T, F> Job for Once<F>
where
    F: FnOnce(&Control) -> Result<T, String> + Send + 'static,
    T: Send + 'static,
{
    type Output = T;
    fn step(&mut self, ctl: &Control) -> Result<Step<T>, String> {
        let f = self.0.take().ok_or("the job already ran")?;
        f(ctl).map(Step::Done)
    }
}

/// The state a job and its owner share: the cancel flag, the fraction done, and the
/// repaint request.
pub struct Control {
    cancel: AtomicBool,
    /// The fraction done, as `f64` bits.
    progress: AtomicU64,
    repaint: Repaint,
}

impl Control {
    fn new(repaint: Repaint) -> Self {
        Self {
            cancel: AtomicBool::new(false),
            progress: AtomicU64::new(0f64.to_bits()),
            repaint,
        }
    }

    /// Whether the owner asked the job to stop (a long step should check between parts).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The fraction done, in [0, 1].
    pub fn set_progress(&self, fraction: f64) {
        self.progress
            .store(fraction.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }

    /// The cancel flag itself (for code that takes an `&AtomicBool`).
    pub fn cancel_flag(&self) -> &AtomicBool {
        &self.cancel
    }

    /// Asks the UI to draw a new frame (new results to show).
    pub fn repaint(&self) {
        (self.repaint)();
    }
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<T> {
    Done(T),
    /// An error, a panic or a failed start, as a message for the user.
    Failed(String),
    Cancelled,
}

enum Driver<T> {
    Thread(Option<JoinHandle<()>>),
    Inline(Option<Box<dyn Job<Output = T>>>),
}

/// The owner's end of a running (or finished) job. Dropping it cancels the job.
pub struct Worker<T> {
    ctl: Arc<Control>,
    outcome: Arc<Mutex<Option<Outcome<T>>>>,
    finished: Arc<AtomicBool>,
    driver: Driver<T>,
    started: Instant,
}

impl<T: Send + 'static> Worker<T> {
    /// In a browser: hands `job` to the page's scheduler ([`pump_background`]).
    #[cfg(target_arch = "wasm32")]
    pub fn spawn(name: &str, job: impl Job<Output = T>, repaint: Repaint) -> Self {
        Self::spawn_weighted(name, job, repaint, 1)
    }

    /// As `spawn`; in a browser, where the jobs share the page's one thread, this one gets
    /// `weight` shares of the time to the others' one each (natively every job has its own
    /// thread and the weight does nothing).
    #[cfg(target_arch = "wasm32")]
    pub fn spawn_weighted(
        _name: &str,
        job: impl Job<Output = T>,
        repaint: Repaint,
        weight: u32,
    ) -> Self {
        let worker = Self::new(repaint, Driver::Thread(None));
        let (ctl, outcome, finished) = (
            Arc::clone(&worker.ctl),
            Arc::clone(&worker.outcome),
            Arc::clone(&worker.finished),
        );
        let mut job = job;
        background::add(
            Box::new(move |deadline| {
                let end = loop {
                    if ctl.is_cancelled() {
                        break Outcome::Cancelled;
                    }
                    match step_caught(&mut job, &ctl) {
                        Ok(Step::Continue) if Instant::now() < deadline => {}
                        Ok(Step::Continue) => return background::Poll::Again(Duration::ZERO),
                        Ok(Step::Wait(d)) => return background::Poll::Again(d),
                        Ok(Step::Done(value)) => break Outcome::Done(value),
                        Err(message) => break Outcome::Failed(message),
                    }
                };
                finish(&outcome, &finished, &ctl, end);
                background::Poll::Finished
            }),
            weight,
        );
        worker
    }

    /// As `spawn` (the weight matters only in a browser).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn spawn_weighted(
        name: &str,
        job: impl Job<Output = T>,
        repaint: Repaint,
        _weight: u32,
    ) -> Self {
        Self::spawn(name, job, repaint)
    }

    /// Runs `job` on a new low-priority thread named `name`. A thread that cannot start is
    /// reported as a failed outcome, like any other error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn spawn(name: &str, job: impl Job<Output = T>, repaint: Repaint) -> Self {
        let mut worker = Self::new(repaint, Driver::Thread(None));
        let (ctl, outcome, finished) = (
            Arc::clone(&worker.ctl),
            Arc::clone(&worker.outcome),
            Arc::clone(&worker.finished),
        );
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                lower_priority();
                let mut job = job;
                let end = loop {
                    if ctl.is_cancelled() {
                        break Outcome::Cancelled;
                    }
                    match step_caught(&mut job, &ctl) {
                        Ok(Step::Continue) => {}
                        Ok(Step::Wait(d)) => std::thread::sleep(d),
                        Ok(Step::Done(value)) => break Outcome::Done(value),
                        Err(message) => break Outcome::Failed(message),
                    }
                };
                finish(&outcome, &finished, &ctl, end);
            });
        match spawned {
            Ok(handle) => worker.driver = Driver::Thread(Some(handle)),
            Err(e) => finish(
                &worker.outcome,
                &worker.finished,
                &worker.ctl,
                Outcome::Failed(format!("cannot start a {name} thread: {e}")),
            ),
        }
        worker
    }

    /// Holds `job` without a thread: it advances only when the owner calls [`Self::pump`].
    pub fn inline(job: impl Job<Output = T>, repaint: Repaint) -> Self {
        Self::new(repaint, Driver::Inline(Some(Box::new(job))))
    }

    fn new(repaint: Repaint, driver: Driver<T>) -> Self {
        Self {
            ctl: Arc::new(Control::new(repaint)),
            outcome: Arc::default(),
            finished: Arc::default(),
            driver,
            started: Instant::now(),
        }
    }

    /// Advances an inline job for up to `budget` (at least one step), on the caller's
    /// thread; does nothing for a threaded one. Returns whether the job has finished.
    pub fn pump(&mut self, budget: Duration) -> bool {
        let Driver::Inline(slot) = &mut self.driver else {
            return self.is_finished();
        };
        let Some(job) = slot.as_mut() else {
            return true;
        };
        let start = Instant::now();
        let end = loop {
            if self.ctl.is_cancelled() {
                break Some(Outcome::Cancelled);
            }
            match step_caught(job.as_mut(), &self.ctl) {
                Ok(Step::Continue) if start.elapsed() < budget => {}
                Ok(Step::Continue | Step::Wait(_)) => break None,
                Ok(Step::Done(value)) => break Some(Outcome::Done(value)),
                Err(message) => break Some(Outcome::Failed(message)),
            }
        };
        match end {
            Some(end) => {
                *slot = None;
                finish(&self.outcome, &self.finished, &self.ctl, end);
                true
            }
            None => false,
        }
    }
}

impl<T> Worker<T> {
    /// Asks the job to stop: it ends at its next step (or when a long step looks).
    pub fn cancel(&self) {
        self.ctl.cancel.store(true, Ordering::Relaxed);
    }

    /// The fraction done, as the job last reported it.
    pub fn progress(&self) -> f64 {
        f64::from_bits(self.ctl.progress.load(Ordering::Relaxed))
    }

    /// Whether the job has ended (its outcome may have been taken already).
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// How the job ended, once; `None` while it runs or after the outcome was taken.
    pub fn take(&self) -> Option<Outcome<T>> {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Time since the job started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits for a threaded job to end (after `cancel`, or for one that ends by itself).
    pub fn join(&mut self) {
        if let Driver::Thread(handle) = &mut self.driver
            && let Some(handle) = handle.take()
        {
            // The thread catches its job's panics, so joining cannot fail with one.
            let _ = handle.join();
        }
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The newest of a series of jobs, each computing something for a key (a schedule, a run):
/// asking for another key cancels the job under way (by dropping its worker), and the last
/// result is kept with the key it is for.
pub struct Latest<K, T> {
    /// The key asked for last; the running job, if any, is for it.
    wanted: Option<K>,
    running: Option<Worker<T>>,
    done: Option<(K, Result<T, String>)>,
    /// Wakes the UI when a job ends.
    pub repaint: Option<Repaint>,
}

impl<K, T> Default for Latest<K, T> {
    fn default() -> Self {
        Self {
            wanted: None,
            running: None,
            done: None,
            repaint: None,
        }
    }
}

impl<K: Clone + PartialEq, T: Send + 'static> Latest<K, T> {
    /// Starts the job `make` builds, on a thread named `name`, unless `key` is the one asked
    /// for last already.
    pub fn ensure<J: Job<Output = T>>(&mut self, name: &str, key: K, make: impl FnOnce() -> J) {
        self.collect();
        if self.wanted.as_ref() == Some(&key) {
            return;
        }
        self.wanted = Some(key);
        let repaint = self.repaint.clone().unwrap_or_else(no_repaint);
        self.running = Some(Worker::spawn(name, make(), repaint));
    }

    /// Takes in the job's result once it has ended.
    pub fn collect(&mut self) {
        let Some(outcome) = self.running.as_ref().and_then(Worker::take) else {
            return;
        };
        self.running = None;
        let result = match outcome {
            Outcome::Done(value) => Ok(value),
            Outcome::Failed(why) => Err(why),
            Outcome::Cancelled => return,
        };
        if let Some(key) = self.wanted.clone() {
            self.done = Some((key, result));
        }
    }

    /// The key asked for last.
    pub fn wanted(&self) -> Option<&K> {
        self.wanted.as_ref()
    }

    /// The result for the key asked for last, once its job has ended.
    pub fn latest(&self) -> Option<&Result<T, String>> {
        let (key, result) = self.done.as_ref()?;
        (self.wanted.as_ref() == Some(key)).then_some(result)
    }

    /// Drops the job under way and the last result.
    pub fn forget(&mut self) {
        self.wanted = None;
        self.running = None;
        self.done = None;
    }
}

/// One step, with a panic turned into an error message.
/// Advances the jobs started with [`Worker::spawn`] for about `budget`, in turn (in a
/// browser, from the frame loop; natively they have threads and this does nothing).
pub fn pump_background(budget: Duration) {
    #[cfg(target_arch = "wasm32")]
    background::pump(budget);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = budget;
}

/// Where there are no threads: the spawned jobs, each a closure that runs its job until a
/// deadline, advanced in turn by [`pump_background`].
#[cfg(target_arch = "wasm32")]
mod background {
    use std::cell::RefCell;
    use std::time::Duration;

    use web_time::Instant;

    pub enum Poll {
        /// Run again after this long.
        Again(Duration),
        Finished,
    }

    struct Entry {
        run: Box<dyn FnMut(Instant) -> Poll>,
        not_before: Instant,
        /// Shares of the budget.
        weight: u32,
    }

    thread_local! {
        static JOBS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    }

    pub fn add(run: Box<dyn FnMut(Instant) -> Poll>, weight: u32) {
        JOBS.with(|jobs| {
            jobs.borrow_mut().push(Entry {
                run,
                not_before: Instant::now(),
                weight: weight.max(1),
            })
        });
    }

    pub fn pump(budget: Duration) {
        // Taken out while they run: a job may start another one.
        let mut jobs = JOBS.with(|jobs| std::mem::take(&mut *jobs.borrow_mut()));
        let start = Instant::now();
        let shares: u32 = jobs
            .iter()
            .filter(|e| e.not_before <= start)
            .map(|e| e.weight)
            .sum();
        let share = budget / shares.max(1);
        jobs.retain_mut(|entry| {
            let now = Instant::now();
            if entry.not_before > now || now - start >= budget {
                return true;
            }
            match (entry.run)(now + share * entry.weight) {
                Poll::Again(wait) => {
                    entry.not_before = Instant::now() + wait;
                    true
                }
                Poll::Finished => false,
            }
        });
        JOBS.with(|new| {
            let mut new = new.borrow_mut();
            jobs.append(&mut new);
            *new = jobs;
        });
    }
}

fn step_caught<J: Job + ?Sized>(job: &mut J, ctl: &Control) -> Result<Step<J::Output>, String> {
    catch_unwind(AssertUnwindSafe(|| job.step(ctl)))
        .unwrap_or_else(|payload| Err(panic_message(payload.as_ref())))
}

fn finish<T>(
    slot: &Mutex<Option<Outcome<T>>>,
    finished: &AtomicBool,
    ctl: &Control,
    end: Outcome<T>,
) {
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(end);
    finished.store(true, Ordering::Release);
    ctl.repaint();
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Lets the calling thread give way to the UI thread: background work (training, sampling,
/// metrics) then takes only the CPU the UI leaves, so frames stay smooth on two cores.
#[allow(unsafe_code)] // one libc call; there is no safe wrapper in std
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its three integer arguments. On Linux, nice values are
    // per thread and `who = 0` names the calling thread. Failure (e.g. a sandbox) is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts to `n`, one per step, reporting progress.
    struct Count {
        i: u32,
        n: u32,
    }

    impl Job for Count {
        type Output = u32;
        fn step(&mut self, ctl: &Control) -> Result<Step<u32>, String> {
            self.i += 1;
            ctl.set_progress(f64::from(self.i) / f64::from(self.n));
            if self.i == 13 && self.n == 99 {
                panic!("step thirteen");
            }
            Ok(if self.i >= self.n {
                Step::Done(self.i)
            } else {
                Step::Continue
            })
        }
    }

    fn wait(worker: &Worker<u32>) -> Outcome<u32> {
        let start = Instant::now();
        while !worker.is_finished() {
            assert!(start.elapsed() < Duration::from_secs(20), "the worker hung");
            std::thread::sleep(Duration::from_millis(1));
        }
        worker.take().expect("an outcome")
    }

    #[test]
    fn a_thread_runs_the_job_to_its_result_and_repaints() {
        let repaints = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&repaints);
        let worker = Worker::spawn(
            "test",
            Count { i: 0, n: 50 },
            Arc::new(move || {
                r.fetch_add(1, Ordering::Relaxed);
            }),
        );
        assert_eq!(wait(&worker), Outcome::Done(50));
        assert_eq!(worker.progress(), 1.0);
        assert!(repaints.load(Ordering::Relaxed) >= 1);
        assert_eq!(worker.take(), None, "the outcome is taken once");
    }

    #[test]
    fn a_panic_is_an_error_with_its_message() {
        let worker = Worker::spawn("test", Count { i: 0, n: 99 }, no_repaint());
        assert_eq!(wait(&worker), Outcome::Failed("step thirteen".into()));
        let mut inline = Worker::inline(Count { i: 0, n: 99 }, no_repaint());
        assert!(inline.pump(Duration::from_secs(5)));
        assert_eq!(inline.take(), Some(Outcome::Failed("step thirteen".into())));
    }

    #[test]
    fn cancel_stops_a_job_that_would_run_forever() {
        let worker = Worker::spawn("test", Count { i: 0, n: u32::MAX }, no_repaint());
        std::thread::sleep(Duration::from_millis(5));
        worker.cancel();
        assert_eq!(wait(&worker), Outcome::Cancelled);
    }

    #[test]
    fn an_inline_job_advances_only_when_pumped_and_gives_the_same_result() {
        let mut worker = Worker::inline(Count { i: 0, n: 1000 }, no_repaint());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(worker.progress(), 0.0, "nothing ran before the first pump");
        // A zero budget still makes progress: one step per pump.
        assert!(!worker.pump(Duration::ZERO));
        assert_eq!(worker.progress(), 0.001);
        while !worker.pump(Duration::from_millis(1)) {}
        assert_eq!(worker.take(), Some(Outcome::Done(1000)));
    }

    #[test]
    fn latest_keeps_only_the_result_for_the_key_asked_for_last() {
        let mut latest: Latest<u32, u32> = Latest::default();
        let wait = |latest: &mut Latest<u32, u32>| {
            let start = Instant::now();
            while latest.latest().is_none() {
                assert!(start.elapsed() < Duration::from_secs(20), "the job hung");
                std::thread::sleep(Duration::from_millis(1));
                latest.collect();
            }
        };
        latest.ensure("test", 1, || Count { i: 0, n: 10 });
        wait(&mut latest);
        assert_eq!(latest.latest(), Some(&Ok(10)));
        // The same key again starts nothing; a new one hides the old result until it ends.
        latest.ensure("test", 1, || Count { i: 0, n: 99 });
        assert_eq!(latest.latest(), Some(&Ok(10)));
        latest.ensure("test", 2, || Count { i: 0, n: 99 });
        assert_eq!(latest.latest(), None);
        wait(&mut latest);
        assert_eq!(latest.latest(), Some(&Err("step thirteen".to_owned())));
        assert_eq!(latest.wanted(), Some(&2));
        latest.forget();
        assert_eq!((latest.wanted(), latest.latest()), (None, None));
    }

    #[test]
    fn once_runs_a_closure_with_the_control() {
        let worker = Worker::spawn(
            "test",
            Once::new(|ctl: &Control| {
                ctl.set_progress(0.5);
                if ctl.is_cancelled() {
                    Err("cancelled".to_owned())
                } else {
                    Ok(7)
                }
            }),
            no_repaint(),
        );
        assert_eq!(wait(&worker), Outcome::Done(7));
        assert_eq!(worker.progress(), 0.5);
    }
}
