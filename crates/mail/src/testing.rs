//! A tiny SMTP server for tests: accepts every mail and keeps its DATA.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// An SMTP server on a local port that accepts every mail.
pub struct SmtpSink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Listens on a free port.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on `port` (0 for any).
    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("binding the SMTP sink: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("SMTP sink address: {e}"));
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, store.clone()));
            }
        });
        Self { addr, mails, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The DATA of every mail received so far.
    pub fn received(&self) -> Vec<String> {
        self.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, mails: Arc<Mutex<Vec<String>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let (mut in_data, mut data) = (false, String::new());
    while let Ok(Some(line)) = lines.next_line().await {
        let reply: &[u8] = if in_data {
            if line != "." {
                data.push_str(&line);
                data.push('\n');
                continue;
            }
            in_data = false;
            if let Ok(mut m) = mails.lock() {
                m.push(std::mem::take(&mut data));
            }
            b"250 queued\r\n"
        } else {
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            match verb.as_str() {
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                "QUIT" => b"221 bye\r\n",
                _ => b"250 ok\r\n",
            }
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
