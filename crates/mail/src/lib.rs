//! The `mail` port: plain-text mails, written as `.eml` files into a folder by default
//! (`file://…`) or sent over SMTP (`smtp://host:port`, `smtps://…`) with lettre.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// A mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()>;
    /// Whether the mail backend can be reached.
    async fn ping(&self) -> anyhow::Result<()>;
}

pub type SharedMailer = Arc<dyn Mailer>;

/// Picks the backend from the URL scheme.
pub fn from_url(url: &str, from: &str) -> anyhow::Result<SharedMailer> {
    let from: Mailbox = from
        .parse()
        .with_context(|| format!("mail.from is not a mail address: {from}"))?;
    if let Some(path) = url.strip_prefix("file://") {
        let dir = PathBuf::from(path);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Arc::new(FileMailer {
            transport: AsyncFileTransport::new(&dir),
            dir,
            from,
        }))
    } else if url.starts_with("smtp://") || url.starts_with("smtps://") {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("reading the SMTP URL")?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(Arc::new(SmtpMailer { transport, from }))
    } else {
        anyhow::bail!(
            "unsupported mail URL scheme (expected file:// or smtp://): {}",
            url.split(':').next().unwrap_or_default()
        )
    }
}

fn build(from: &Mailbox, mail: &OutgoingMail) -> anyhow::Result<Message> {
    let to: Mailbox = mail
        .to
        .parse()
        .with_context(|| format!("not a mail address: {}", mail.to))?;
    Ok(Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())?)
}

struct FileMailer {
    transport: AsyncFileTransport<Tokio1Executor>,
    dir: PathBuf,
    from: Mailbox,
}

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()> {
        self.transport
            .send(build(&self.from, mail)?)
            .await
            .with_context(|| format!("writing a mail into {}", self.dir.display()))?;
        Ok(())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        let meta = tokio::fs::metadata(&self.dir).await?;
        anyhow::ensure!(meta.is_dir(), "{} is not a folder", self.dir.display());
        Ok(())
    }
}

struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> anyhow::Result<()> {
        self.transport
            .send(build(&self.from, mail)?)
            .await
            .context("sending over SMTP")?;
        Ok(())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.transport.test_connection().await?,
            "the SMTP server did not answer"
        );
        Ok(())
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_backend_writes_eml_files() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let mailer = from_url(&url, "shop <shop@example.com>").unwrap();
        mailer.ping().await.unwrap();
        mailer
            .send(&OutgoingMail {
                to: "buyer@example.com".into(),
                subject: "ご注文ありがとうございます".into(),
                body: "order 20250101-000001".into(),
            })
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].path()).unwrap();
        assert!(text.contains("buyer@example.com"));
    }

    #[tokio::test]
    async fn smtp_backend_delivers_to_an_smtp_server() {
        let server = testing::SmtpSink::start().await;
        let mailer = from_url(&server.url(), "shop@example.com").unwrap();
        mailer
            .send(&OutgoingMail {
                to: "buyer@example.com".into(),
                subject: "Order 20250101-000001".into(),
                body: "Thank you".into(),
            })
            .await
            .unwrap();
        let data = server.received().join("");
        assert!(data.contains("To: buyer@example.com"), "{data}");
        assert!(data.contains("Thank you"), "{data}");
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(from_url("pigeon://loft", "a@example.com").is_err());
    }
}
