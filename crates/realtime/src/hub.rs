//! The sockets of this node: which user and which topics each serves, and a bounded
//! queue per socket. Delivering never waits: a socket whose queue is full is told to
//! close (1013) instead of making its frames pile up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::frame::Frame;

/// One socket as the hub reaches it.
#[derive(Clone)]
struct Socket {
    id: u64,
    queue: mpsc::Sender<Frame>,
    lagging: CancellationToken,
}

impl Socket {
    fn offer(&self, frame: &Frame) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(frame.clone()) {
            self.lagging.cancel();
        }
    }
}

#[derive(Default)]
struct Sockets {
    next_id: u64,
    users: HashMap<String, Vec<Socket>>,
    topics: HashMap<String, Vec<Socket>>,
}

impl Sockets {
    /// A new socket with the next id and a queue of `queue` frames: the hub's end and
    /// the socket's (whose `first` the caller sets).
    fn open(&mut self, queue: usize) -> (Socket, Joined) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let lagging = CancellationToken::new();
        self.next_id += 1;
        let socket = Socket {
            id: self.next_id,
            queue: tx,
            lagging: lagging.clone(),
        };
        let joined = Joined {
            id: self.next_id,
            queue: rx,
            lagging,
            first: false,
        };
        (socket, joined)
    }
}

/// A socket just registered: its id, its queue, and the signal that it fell behind.
pub(crate) struct Joined {
    pub(crate) id: u64,
    pub(crate) queue: mpsc::Receiver<Frame>,
    pub(crate) lagging: CancellationToken,
    /// The user had no other socket on this node.
    pub(crate) first: bool,
}

#[derive(Default)]
pub(crate) struct Hub {
    sockets: Mutex<Sockets>,
    count: std::sync::atomic::AtomicUsize,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sockets> {
        // A panic while holding the lock leaves plain maps behind, still consistent.
        self.sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn join(&self, user: &str, queue: usize) -> Joined {
        let mut sockets = self.lock();
        self.count.fetch_add(1, Ordering::Relaxed);
        let (socket, mut joined) = sockets.open(queue);
        let of_user = sockets.users.entry(user.to_owned()).or_default();
        of_user.push(socket);
        joined.first = of_user.len() == 1;
        joined
    }

    /// Takes the socket out, from its user and its topics; returns whether it was the
    /// user's last socket here, and the topics nobody here follows any more.
    pub(crate) fn leave(&self, user: &str, id: u64, topics: &[String]) -> (bool, Vec<String>) {
        let mut sockets = self.lock();
        let last = match sockets.users.get_mut(user) {
            Some(list) => {
                let before = list.len();
                list.retain(|s| s.id != id);
                if list.len() < before {
                    self.count.fetch_sub(1, Ordering::Relaxed);
                }
                let empty = list.is_empty();
                if empty {
                    sockets.users.remove(user);
                }
                empty
            }
            None => false,
        };
        let emptied = topics
            .iter()
            .filter(|topic| remove_from(&mut sockets.topics, topic, id))
            .cloned()
            .collect();
        (last, emptied)
    }

    /// Adds the user's socket `id` to `topic`; true when nobody here followed it before.
    pub(crate) fn follow(&self, user: &str, id: u64, topic: &str) -> bool {
        let mut sockets = self.lock();
        let Some(socket) = sockets
            .users
            .get(user)
            .and_then(|list| list.iter().find(|s| s.id == id))
            .cloned()
        else {
            return false;
        };
        let followers = sockets.topics.entry(topic.to_owned()).or_default();
        if followers.iter().any(|s| s.id == id) {
            return false;
        }
        followers.push(socket);
        followers.len() == 1
    }

    /// A listener that is no socket (a server-sent event stream): it follows `topic`
    /// only. Its `first` is whether nobody here followed the topic before.
    pub(crate) fn listen(&self, topic: &str, queue: usize) -> Joined {
        let mut sockets = self.lock();
        let (socket, mut joined) = sockets.open(queue);
        let followers = sockets.topics.entry(topic.to_owned()).or_default();
        followers.push(socket);
        joined.first = followers.len() == 1;
        joined
    }

    /// Every followed topic with the ids of its followers here.
    pub(crate) fn topics(&self) -> Vec<(String, Vec<u64>)> {
        self.lock()
            .topics
            .iter()
            .map(|(topic, list)| (topic.clone(), list.iter().map(|s| s.id).collect()))
            .collect()
    }

    /// Takes socket `id` off `topic`; true when nobody here follows it any more.
    pub(crate) fn unfollow(&self, id: u64, topic: &str) -> bool {
        remove_from(&mut self.lock().topics, topic, id)
    }

    /// To every socket of `user` here but `skip`.
    pub(crate) fn to_user(&self, user: &str, frame: &Frame, skip: Option<u64>) {
        if let Some(list) = self.lock().users.get(user) {
            list.iter()
                .filter(|s| Some(s.id) != skip)
                .for_each(|s| s.offer(frame));
        }
    }

    pub(crate) fn to_topic(&self, topic: &str, frame: &Frame) {
        if let Some(list) = self.lock().topics.get(topic) {
            list.iter().for_each(|s| s.offer(frame));
        }
    }

    /// How many sockets are open here.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// The users with a socket here.
    pub(crate) fn users(&self) -> Vec<String> {
        self.lock().users.keys().cloned().collect()
    }

    /// Tells every socket to close (the node is stopping).
    pub(crate) fn close_all(&self) {
        let sockets = self.lock();
        for socket in sockets.users.values().flatten() {
            socket.lagging.cancel();
        }
    }
}

/// Removes socket `id` from `key`'s list; true when that emptied the list.
fn remove_from(map: &mut HashMap<String, Vec<Socket>>, key: &str, id: u64) -> bool {
    let Some(list) = map.get_mut(key) else {
        return false;
    };
    let before = list.len();
    list.retain(|s| s.id != id);
    if list.is_empty() {
        map.remove(key);
        before > 0
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u32) -> Frame {
        Frame::error("n", &n.to_string(), None)
    }

    #[tokio::test]
    async fn a_user_reaches_each_of_their_sockets_and_a_slow_one_is_told_to_close() {
        let hub = Hub::default();
        let mut a = hub.join("ann", 2);
        let mut b = hub.join("ann", 2);
        assert!(a.first && !b.first);
        hub.to_user("ann", &frame(1), None);
        assert!(a.queue.recv().await.is_some());
        assert!(b.queue.recv().await.is_some());
        for n in 0..3 {
            hub.to_user("ann", &frame(n), None);
        }
        assert!(a.lagging.is_cancelled() && b.lagging.is_cancelled());
        assert_eq!(hub.leave("ann", a.id, &[]), (false, vec![]));
        assert_eq!(hub.leave("ann", b.id, &[]), (true, vec![]));
        assert!(hub.users().is_empty());
        assert_eq!(hub.count(), 0);
    }

    #[tokio::test]
    async fn topics_reach_their_followers_only() {
        let hub = Hub::default();
        let mut a = hub.join("ann", 8);
        let mut b = hub.join("bob", 8);
        assert!(hub.follow("ann", a.id, "live:1"));
        assert!(!hub.follow("ann", a.id, "live:1"));
        assert!(!hub.follow("bob", b.id, "live:1"));
        assert!(!hub.follow("bob", a.id, "live:2"), "not bob's socket");
        hub.to_topic("live:1", &frame(1));
        assert!(a.queue.recv().await.is_some() && b.queue.recv().await.is_some());
        assert!(!hub.unfollow(a.id, "live:1"));
        hub.to_topic("live:1", &frame(2));
        assert!(a.queue.try_recv().is_err());
        let (_, emptied) = hub.leave("bob", b.id, &["live:1".to_owned()]);
        assert_eq!(emptied, ["live:1"]);
        let c = hub.join("cy", 8);
        assert!(hub.follow("cy", c.id, "live:1"), "the first follower again");
    }
}
