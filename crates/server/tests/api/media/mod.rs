//! Images (`api.md`, "Media"): presigned uploads checked on complete, the worker's
//! variants and failures, serving with caching headers, owners' lists and deletes. Every
//! story runs on SQLite with a folder, and on PostgreSQL with Redis and a real
//! S3-compatible server that checks signatures when `MATSURI_TEST_S3_URL` is set (in CI
//! it must be).

mod images;
mod processing;
pub mod support;
mod uploads;

/// Runs each named `async fn(Backend, Option<String>)` on SQLite with a folder store
/// (`None`), and on PostgreSQL and Redis with the S3 store at the given URL.
#[macro_export]
macro_rules! media_backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_folder {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite, None).await;
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let (Some(backend), Some(s3)) = (
                        $crate::helpers::Backend::postgres_redis(),
                        $crate::media::support::s3_url(stringify!($name)),
                    ) {
                        super::$name(backend, Some(s3)).await;
                    }
                }
            )*
        }
    };
}
