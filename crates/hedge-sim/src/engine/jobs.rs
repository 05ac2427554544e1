//! The jobs in the system: one slot per live job (freed when it finishes, so memory follows the jobs in
//! the system, not the trace) and the waiting line in dispatch order.

use super::Alloc;
use crate::job::JobSpec;
use crate::queue::SimTime;
use std::cmp::Reverse;
use std::collections::BTreeSet;

/// Waiting order: higher priority first, then earlier submission, then id.
pub(super) type WaitKey = (Reverse<i32>, SimTime, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Waiting,
    Launching,
    Running,
}

pub(super) struct Active {
    pub spec: JobSpec,
    pub remaining: u64,
    pub state: State,
    pub attempt: u32,
    pub alloc: Option<Alloc>,
    pub started: SimTime,
    pub progress_from: SimTime,
    pub first_start: Option<SimTime>,
    /// Position in the waiting set, while waiting.
    pub wkey: WaitKey,
    /// Providers this job failed over from since it last ran.
    pub excluded: Vec<u16>,
}

impl Active {
    pub fn new(spec: JobSpec, now: SimTime) -> Self {
        Active {
            spec,
            remaining: spec.duration_s,
            state: State::Waiting,
            attempt: 0,
            alloc: None,
            started: now,
            progress_from: now,
            first_start: None,
            wkey: (Reverse(spec.priority), spec.submit, spec.id.0),
            excluded: Vec::new(),
        }
    }
}

#[derive(Default)]
pub(super) struct JobTable {
    slots: Vec<Option<Active>>,
    free: Vec<u32>,
    waiting: BTreeSet<(WaitKey, u32)>,
}

impl JobTable {
    /// Whether any job is in the system.
    pub fn any(&self) -> bool {
        self.slots.len() > self.free.len()
    }

    /// Stores a new job (in state `Waiting` but not yet in line) and returns its slot.
    pub fn insert(&mut self, a: Active) -> u32 {
        match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(a);
                s
            }
            None => {
                self.slots.push(Some(a));
                (self.slots.len() - 1) as u32
            }
        }
    }

    pub fn release(&mut self, slot: u32) {
        self.slots[slot as usize] = None;
        self.free.push(slot);
    }

    pub fn get(&self, slot: u32) -> Option<&Active> {
        self.slots[slot as usize].as_ref()
    }

    pub fn live(&self, slot: u32) -> &Active {
        self.get(slot).expect("live slot")
    }

    pub fn live_mut(&mut self, slot: u32) -> &mut Active {
        self.slots[slot as usize].as_mut().expect("live slot")
    }

    pub fn is_waiting(&self, slot: u32) -> bool {
        self.get(slot).is_some_and(|a| a.state == State::Waiting)
    }

    /// Puts the job in line (its state must be `Waiting`).
    pub fn enqueue(&mut self, slot: u32) {
        let wkey = self.live(slot).wkey;
        self.waiting.insert((wkey, slot));
    }

    /// Takes a waiting job out of line; returns its GPUs if it was in line.
    pub fn dequeue(&mut self, slot: u32) -> Option<u32> {
        let a = self.slots[slot as usize].as_ref().expect("live slot");
        (a.state == State::Waiting && self.waiting.remove(&(a.wkey, slot))).then_some(a.spec.gpus)
    }

    pub fn nobody_waits(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The waiting jobs' slots in dispatch order.
    pub fn waiting_order(&self) -> Vec<u32> {
        self.waiting.iter().map(|(_, s)| *s).collect()
    }

    /// Running jobs whose allocation matches, oldest start first, as (start, slot).
    pub fn running_on(&self, pred: impl Fn(&Alloc) -> bool) -> Vec<(SimTime, u32)> {
        let mut v: Vec<(SimTime, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|a| a.state == State::Running && a.alloc.as_ref().is_some_and(&pred))
                    .map(|a| (a.started, i as u32))
            })
            .collect();
        v.sort();
        v
    }

    /// (running, not running) jobs in the system.
    pub fn counts(&self) -> (u64, u64) {
        let running = self
            .slots
            .iter()
            .flatten()
            .filter(|a| a.state == State::Running)
            .count() as u64;
        let others = self
            .slots
            .iter()
            .flatten()
            .filter(|a| a.state != State::Running)
            .count() as u64;
        (running, others)
    }
}
