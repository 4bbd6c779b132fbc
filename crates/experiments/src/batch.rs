//! Many trainings as one computation: the sweep's workers hand their networks to one
//! [`Ensembler`], which trains every group of compatible networks as one batched ensemble.
//!
//! Each worker of [`crate::run_sweep_concurrent`] computes its unit as before and, when the unit
//! needs a network, asks its [`Member`] (a [`ModelRunner`]). The member queues the job and waits.
//! When every worker still working has queued one, the last to arrive takes the whole queue,
//! groups the jobs by [`BatchRunner::key`] (jobs with equal keys can share one step: same
//! shape, settings, budget and batch sizes), trains each group, at most `max_k` networks at a
//! time, in one call of [`BatchRunner::train_many`] on the shared thread pool, and hands every
//! worker its own result. So K workers train up to K networks per call, and a unit's rows do not
//! depend on K, on which units share a call, or on resume, as long as the batch runner gives
//! each network the numbers it would get alone (the burn runner does, tested bit for bit).

use crate::sim::{BoxError, ModelJob, ModelOutput, ModelRunner};
use memdiff_data::ImageSet;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

/// Trains several networks in one call.
pub trait BatchRunner: Send + Sync {
    /// Jobs whose keys are equal can be trained in one call of [`BatchRunner::train_many`].
    fn key(&self, job: &ModelJob, train: &ImageSet) -> Result<String, BoxError>;
    /// The relative cost of one training step of this job (e.g. images per step); calls are
    /// split and ordered by it so that the lanes finish together.
    fn cost(&self, _job: &ModelJob, train: &ImageSet) -> usize {
        train.n
    }
    /// Trains and samples every job (all with the same key); one result per job, in order.
    fn train_many(&self, jobs: &[(&ModelJob, &ImageSet)]) -> Vec<Result<ModelOutput, BoxError>>;
}

struct Request {
    id: u64,
    job: ModelJob,
    train: ImageSet,
}

#[derive(Default)]
struct State {
    /// Workers that may still ask for a network.
    live: usize,
    pending: Vec<Request>,
    done: HashMap<u64, Result<ModelOutput, BoxError>>,
    next_id: u64,
    /// A worker is training the last queue.
    running: bool,
}

/// The shared trainer of K workers (module docs).
pub struct Ensembler {
    state: Mutex<State>,
    wake: Condvar,
    runner: Box<dyn BatchRunner>,
    max_k: usize,
    /// One pool per lane: calls run concurrently, one per lane.
    lanes: Vec<rayon::ThreadPool>,
}

impl Ensembler {
    /// `workers` members over `runner`, at most `max_k` networks per call; the calls of one queue
    /// run `lanes` at a time, each on its own pool of `threads_per_lane` threads.
    pub fn members(
        runner: Box<dyn BatchRunner>,
        workers: usize,
        max_k: usize,
        lanes: usize,
        threads_per_lane: usize,
    ) -> Result<Vec<Member>, BoxError> {
        let lanes = (0..lanes.max(1))
            .map(|_| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads_per_lane.max(1))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let e = Arc::new(Self {
            state: Mutex::new(State {
                live: workers,
                ..State::default()
            }),
            wake: Condvar::new(),
            runner,
            max_k: max_k.max(1),
            lanes,
        });
        Ok((0..workers)
            .map(|_| Member {
                e: Arc::clone(&e),
                finished: false,
            })
            .collect())
    }

    /// Queues `jobs` and waits for their results (in order).
    fn ask(&self, jobs: &[(&ModelJob, &ImageSet)]) -> Vec<Result<ModelOutput, BoxError>> {
        let mut st = self.state.lock().expect("ensembler lock");
        let mut ids = Vec::with_capacity(jobs.len());
        for (job, train) in jobs {
            let id = st.next_id;
            st.next_id += 1;
            st.pending.push(Request {
                id,
                job: (*job).clone(),
                train: (*train).clone(),
            });
            ids.push(id);
        }
        self.wake.notify_all();
        loop {
            if ids.iter().all(|id| st.done.contains_key(id)) {
                return ids
                    .iter()
                    .map(|id| st.done.remove(id).expect("checked"))
                    .collect();
            }
            // Every working worker has asked (a worker asking for several networks counts once
            // for each).
            if !st.running && !st.pending.is_empty() && st.pending.len() >= st.live {
                st.running = true;
                let queue = std::mem::take(&mut st.pending);
                drop(st);
                let results = self.train_queue(queue);
                st = self.state.lock().expect("ensembler lock");
                st.done.extend(results);
                st.running = false;
                self.wake.notify_all();
                continue;
            }
            st = self.wake.wait(st).expect("ensembler lock");
        }
    }

    /// Trains a queue: groups by key in order of first appearance, each split into calls of
    /// at most `max_k` networks and of about a lane's share of the queue's cost at most; the
    /// calls run on the lanes, the costliest first.
    fn train_queue(&self, queue: Vec<Request>) -> Vec<(u64, Result<ModelOutput, BoxError>)> {
        let mut out = Vec::with_capacity(queue.len());
        let mut groups: Vec<(String, Vec<&Request>)> = Vec::new();
        for r in &queue {
            match self.runner.key(&r.job, &r.train) {
                Ok(k) => match groups.iter_mut().find(|(g, _)| *g == k) {
                    Some((_, v)) => v.push(r),
                    None => groups.push((k, vec![r])),
                },
                Err(e) => out.push((r.id, Err(e))),
            }
        }
        // Split each group so that no call costs much more than a lane's share of the queue.
        let cost: HashMap<u64, usize> = queue
            .iter()
            .map(|r| (r.id, self.runner.cost(&r.job, &r.train).max(1)))
            .collect();
        let total: usize = groups
            .iter()
            .flat_map(|(_, m)| m.iter())
            .map(|r| cost[&r.id])
            .sum();
        let share = total.div_ceil(self.lanes.len());
        let mut calls: Vec<(usize, Vec<&Request>)> = Vec::new();
        for (_, members) in groups {
            let group: usize = members.iter().map(|r| cost[&r.id]).sum();
            let size = (members.len() * share / group).clamp(1, self.max_k);
            for chunk in members.chunks(size) {
                calls.push((chunk.iter().map(|r| cost[&r.id]).sum(), chunk.to_vec()));
            }
        }
        // the costliest calls first (stable: equal costs keep the queue's order)
        calls.sort_by_key(|(c, _)| std::cmp::Reverse(*c));
        let calls: Vec<Vec<&Request>> = calls.into_iter().map(|(_, c)| c).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for pool in &self.lanes {
                let (calls, next, done) = (&calls, &next, &done);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(call) = calls.get(i) else { break };
                    let jobs: Vec<(&ModelJob, &ImageSet)> =
                        call.iter().map(|r| (&r.job, &r.train)).collect();
                    let results = pool.install(|| self.runner.train_many(&jobs));
                    assert_eq!(results.len(), call.len(), "one result per job");
                    let mut d = done.lock().expect("results lock");
                    d.extend(call.iter().map(|r| r.id).zip(results));
                });
            }
        });
        out.extend(done.into_inner().expect("results lock"));
        out
    }

    fn leave(&self) {
        let mut st = self.state.lock().expect("ensembler lock");
        st.live = st.live.saturating_sub(1);
        self.wake.notify_all();
    }
}

/// One worker's handle on the [`Ensembler`]: a [`ModelRunner`] whose calls wait until every
/// working worker has asked, then get their network from one batched training.
pub struct Member {
    e: Arc<Ensembler>,
    finished: bool,
}

impl ModelRunner for Member {
    fn train_and_sample(
        &mut self,
        job: &ModelJob,
        train: &ImageSet,
    ) -> Result<ModelOutput, BoxError> {
        self.e
            .ask(&[(job, train)])
            .pop()
            .expect("one result per job")
    }

    fn train_and_sample_many(
        &mut self,
        jobs: &[(&ModelJob, &ImageSet)],
    ) -> Vec<Result<ModelOutput, BoxError>> {
        self.e.ask(jobs)
    }

    fn finished(&mut self) {
        if !self.finished {
            self.finished = true;
            self.e.leave();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.finished();
    }
}
