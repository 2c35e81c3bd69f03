//! The sessions example in a real browser: headless Chromium from Debian, driven through
//! chromedriver (WebDriver) with fantoccini, against two instances of the app sharing
//! sessions in the real ferrocached. Log in on A, open B and be logged in, log out on B, and A
//! sees the logout; with a 2 s TTL an idle session ends (a real wait here, the one place a
//! browser needs it). A screenshot of the logged-in page is saved under target/tmp/artifacts/.

#[path = "../../client/tests/support/mod.rs"]
mod support;

use fantoccini::{ClientBuilder, Locator};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{ServerProcess, free_port, start_ferrocached, which};

/// A child process killed by PID when dropped.
struct Process {
    child: Child,
    port: u16,
}

impl Process {
    fn spawn(mut command: Command, port: u16, what: &str) -> Process {
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{what}-{port}.log"));
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{what} exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "{what} did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Process { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn instance(cache: &ServerProcess, name: &str, ttl: u32) -> Process {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessions"));
    command
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cache",
            &cache.address(),
        ])
        .args(["--name", name, "--session-ttl", &ttl.to_string()]);
    Process::spawn(command, port, &format!("sessions-{name}"))
}

fn required(program: &str) -> PathBuf {
    which(program).unwrap_or_else(|| {
        panic!("{program} not found: install chromium and chromium-driver (scripts/install-test-deps.sh)")
    })
}

/// The text of the element `css` names, once the page shows one. A click that submits a form
/// returns before the browser has loaded the next page, so the element is waited for (and read
/// again if the page changed under the read) for a bounded time rather than looked up once.
async fn text(browser: &fantoccini::Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = async {
            browser
                .wait()
                .at_most(Duration::from_secs(2))
                .for_element(Locator::Css(css))
                .await?
                .text()
                .await
        };
        match attempt.await {
            Ok(text) => return text,
            Err(e) if Instant::now() >= deadline => panic!("no {css} on the page: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn log_in(browser: &fantoccini::Client, url: &str, name: &str) {
    browser.goto(url).await.unwrap();
    browser
        .find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    browser
        .find(Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_browser_session() {
    let chromium = required("chromium");
    let chromedriver = required("chromedriver");
    let cache = start_ferrocached();
    let a = instance(&cache, "A", 60);
    let b = instance(&cache, "B", 60);
    let short = instance(&cache, "C", 2);

    let driver_port = free_port();
    let mut command = Command::new(chromedriver);
    command.args([
        format!("--port={driver_port}"),
        "--allowed-ips=127.0.0.1".into(),
    ]);
    let _driver = Process::spawn(command, driver_port, "chromedriver");

    let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-{driver_port}"));
    let _ = std::fs::remove_dir_all(&profile);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=900,500",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a WebDriver session with headless chromium");

    let outcome = async {
        // Log in on A.
        log_in(&browser, &a.url(), "ada").await;
        assert_eq!(text(&browser, "#user").await, "ada");
        assert_eq!(text(&browser, "#instance").await, "A");
        let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        let png = browser.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(artifacts.join("sessions-logged-in.png"), png).unwrap();

        // The cookie is HttpOnly and SameSite=Lax.
        let cookie = browser.get_named_cookie("sid").await.unwrap();
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(
            cookie.same_site().map(|s| s.to_string()).as_deref(),
            Some("Lax")
        );

        // B knows the session A created.
        browser.goto(&b.url()).await.unwrap();
        assert_eq!(text(&browser, "#instance").await, "B");
        assert_eq!(text(&browser, "#user").await, "ada");

        // Log out on B; A sees it.
        browser
            .find(Locator::Id("logout"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert_eq!(text(&browser, "#anonymous").await, "Not logged in.");
        browser.goto(&a.url()).await.unwrap();
        assert_eq!(text(&browser, "#instance").await, "A");
        assert_eq!(text(&browser, "#anonymous").await, "Not logged in.");

        // A 2 s session left idle ends.
        log_in(&browser, &short.url(), "bob").await;
        assert_eq!(text(&browser, "#user").await, "bob");
        tokio::time::sleep(Duration::from_millis(3200)).await;
        browser.refresh().await.unwrap();
        assert_eq!(text(&browser, "#anonymous").await, "Not logged in.");
    }
    .await;
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    outcome
}
