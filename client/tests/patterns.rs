//! The patterns against the real ferrocached: a stampede of threads (and of tokio tasks) on one
//! cold key runs the loader once; a failing loader gives its lease back; an invalidated key is
//! served stale to all but the one reloading it; a write-through beats an older load; an
//! unreachable cache turns reads into loads; sessions slide their expiry and never come back
//! once destroyed.

mod support;

use ferrocache_client::{
    AsyncClient, Client, LeaseOptions, LoadError, LoadOutcome, SessionError, SessionStore,
    WriteOutcome,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::{ServerProcess, free_port, start_ferrocached};

fn client(server: &ServerProcess) -> Client {
    Client::single(&server.address()).unwrap()
}

/// The remaining TTL the server reports for `key`.
fn ttl_of(client: &Client, key: &[u8]) -> i64 {
    let response = client
        .meta(&ferrocache_client::MetaRequest::new(
            ferrocache_protocol::MetaCommand::Get,
            key,
            "t",
        ))
        .unwrap();
    let ttl = response.flag(b't').expect("t flag");
    std::str::from_utf8(ttl).unwrap().parse().unwrap()
}

#[test]
fn a_stampede_of_threads_runs_the_loader_once() {
    let server = start_ferrocached();
    let client = Arc::new(client(&server));
    let loads = Arc::new(AtomicUsize::new(0));
    let threads = 32;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (client, loads, barrier) = (client.clone(), loads.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                client
                    .get_or_load(b"cold", 60, || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        Ok::<_, std::io::Error>(b"row".to_vec())
                    })
                    .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|r| r.value == b"row"));
    let loaded = results
        .iter()
        .filter(|r| r.outcome == LoadOutcome::Loaded)
        .count();
    assert_eq!(loaded, 1, "{results:?}");
    assert!(
        results.iter().all(|r| matches!(
            r.outcome,
            LoadOutcome::Loaded | LoadOutcome::Waited | LoadOutcome::Hit
        )),
        "{results:?}"
    );
    assert_eq!(client.get(b"cold").unwrap().unwrap().value, b"row");
}

#[test]
fn a_failing_loader_gives_the_lease_back() {
    let server = start_ferrocached();
    let client = client(&server);
    let failed = client.get_or_load(b"flaky", 60, || Err::<Vec<u8>, _>("database down"));
    assert!(matches!(failed, Err(LoadError::Loader("database down"))));
    // The next caller wins at once: it neither waits out the 30 s lease nor sees an error.
    let next = client
        .get_or_load(b"flaky", 60, || Ok::<_, &str>(b"back".to_vec()))
        .unwrap();
    assert_eq!(next.outcome, LoadOutcome::Loaded);

    // The same for a stale item: the recache lease is handed out again.
    client.invalidate(b"flaky", 30).unwrap();
    let failed = client.get_or_load(b"flaky", 60, || Err::<Vec<u8>, _>("still down"));
    assert!(failed.is_err());
    let next = client
        .get_or_load(b"flaky", 60, || Ok::<_, &str>(b"fresh".to_vec()))
        .unwrap();
    assert_eq!(
        (next.value.as_slice(), next.outcome),
        (b"fresh".as_slice(), LoadOutcome::Refreshed)
    );
}

#[test]
fn an_invalidated_key_is_served_stale_while_one_caller_reloads_it() {
    let server = start_ferrocached();
    let client = Arc::new(client(&server));
    let outcome = client
        .write_through(b"item", b"v1", 60, || Ok::<_, &str>(()))
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Cached);
    assert!(client.invalidate(b"item", 30).unwrap());
    assert!(!client.invalidate(b"absent", 30).unwrap());

    let reloading = Arc::new(Barrier::new(2));
    let reloader = {
        let (client, reloading) = (client.clone(), reloading.clone());
        std::thread::spawn(move || {
            client
                .get_or_load(b"item", 60, || {
                    reloading.wait();
                    reloading.wait();
                    Ok::<_, &str>(b"v2".to_vec())
                })
                .unwrap()
        })
    };
    reloading.wait();
    let meanwhile = client
        .get_or_load(b"item", 60, || -> Result<Vec<u8>, &str> {
            panic!("a second loader ran during the recache")
        })
        .unwrap();
    assert_eq!(
        (meanwhile.value.as_slice(), meanwhile.outcome),
        (b"v1".as_slice(), LoadOutcome::StaleServed)
    );
    reloading.wait();
    let reloaded = reloader.join().unwrap();
    assert_eq!(reloaded.outcome, LoadOutcome::Refreshed);
    let after = client
        .get_or_load(b"item", 60, || Ok::<_, &str>(b"never".to_vec()))
        .unwrap();
    assert_eq!(
        (after.value.as_slice(), after.outcome),
        (b"v2".as_slice(), LoadOutcome::Hit)
    );
}

#[test]
fn a_write_through_beats_an_older_load() {
    let server = start_ferrocached();
    let client = Arc::new(client(&server));
    let loading = Arc::new(Barrier::new(2));
    let reader = {
        let (client, loading) = (client.clone(), loading.clone());
        std::thread::spawn(move || {
            client
                .get_or_load(b"row", 60, || {
                    loading.wait(); // read the old row ...
                    loading.wait(); // ... and store it only after the write
                    Ok::<_, &str>(b"old".to_vec())
                })
                .unwrap()
        })
    };
    loading.wait();
    let written = client
        .write_through(b"row", b"new", 60, || Ok::<_, &str>(()))
        .unwrap();
    assert_eq!(written, WriteOutcome::Cached);
    loading.wait();
    assert_eq!(reader.join().unwrap().value, b"old");
    // The lease's `ms ... C<cas>` was refused: the newer value stays.
    assert_eq!(client.get(b"row").unwrap().unwrap().value, b"new");

    // A failed database write leaves no cached value behind.
    let failed = client.write_through(b"row", b"newer", 60, || Err::<(), _>("constraint"));
    assert!(failed.is_err());
    assert_eq!(client.get(b"row").unwrap(), None);
}

#[test]
fn a_value_the_cache_refuses_is_invalidated_not_left_stale() {
    let server = start_ferrocached();
    let client = client(&server);
    client.set(b"big", b"old", 60).unwrap();
    // Over the server's 1 MiB item limit: the set is refused, so the key is deleted.
    let huge = vec![b'x'; 2 * 1024 * 1024];
    let outcome = client
        .write_through(b"big", &huge, 60, || Ok::<_, &str>(()))
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Invalidated);
    assert_eq!(client.get(b"big").unwrap(), None);
}

#[test]
fn early_refresh_lets_one_caller_renew_a_key_about_to_expire() {
    let server = start_ferrocached();
    let client = client(&server);
    client.set(b"hot", b"v1", 3).unwrap();
    let options = LeaseOptions {
        refresh_before: Some(10),
        ..LeaseOptions::default()
    };
    let refreshed = client
        .get_or_load_with(b"hot", 600, &options, || Ok::<_, &str>(b"v2".to_vec()))
        .unwrap();
    assert_eq!(refreshed.outcome, LoadOutcome::Refreshed);
    assert!(ttl_of(&client, b"hot") > 500);
    let hit = client
        .get_or_load_with(b"hot", 600, &options, || Ok::<_, &str>(b"v3".to_vec()))
        .unwrap();
    assert_eq!(
        (hit.value.as_slice(), hit.outcome),
        (b"v2".as_slice(), LoadOutcome::Hit)
    );
}

#[test]
fn an_unreachable_cache_turns_reads_into_loads() {
    let client = Client::single(&format!("127.0.0.1:{}", free_port())).unwrap();
    let loaded = client
        .get_or_load(b"k", 60, || Ok::<_, &str>(b"from db".to_vec()))
        .unwrap();
    assert_eq!(loaded.outcome, LoadOutcome::CacheUnavailable);
    let written = client
        .write_through(b"k", b"v", 60, || Ok::<_, &str>(()))
        .unwrap();
    assert_eq!(written, WriteOutcome::CacheUnreachable);
}

#[test]
fn sessions_slide_their_expiry_and_stay_destroyed() {
    let server = start_ferrocached();
    let client = Arc::new(client(&server));
    let sessions = SessionStore::new(client.clone(), "session:", 1800);
    let id = sessions.create(b"user=ada").unwrap();
    let key = format!("session:{id}");
    assert_eq!(sessions.load(&id).unwrap().unwrap(), b"user=ada");
    // Sliding: shorten the TTL behind the store's back; a load pushes it back to 1800.
    client.touch(key.as_bytes(), 5).unwrap();
    assert!(ttl_of(&client, key.as_bytes()) <= 5);
    sessions.load(&id).unwrap().unwrap();
    assert!(ttl_of(&client, key.as_bytes()) > 1700);

    sessions.save(&id, b"user=ada;theme=dark").unwrap();
    assert_eq!(sessions.load(&id).unwrap().unwrap(), b"user=ada;theme=dark");
    assert!(sessions.destroy(&id).unwrap());
    assert!(!sessions.destroy(&id).unwrap());
    assert_eq!(sessions.load(&id).unwrap(), None);
    assert!(matches!(
        sessions.save(&id, b"x"),
        Err(SessionError::NotFound)
    ));

    // An expired session is gone (server-side TTL, not a sleep: an exptime in the past).
    let id = sessions.create(b"user=bob").unwrap();
    client
        .touch(format!("session:{id}").as_bytes(), -1)
        .unwrap();
    assert_eq!(sessions.load(&id).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_client_runs_the_same_patterns() {
    let server = start_ferrocached();
    let client = AsyncClient::single(&server.address()).unwrap();
    client.flush_all().await.unwrap();
    assert_eq!(client.version().await.unwrap().len(), 1);

    // 100 tasks, one cold key, one load.
    let loads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (client, loads) = (client.clone(), loads.clone());
            tokio::spawn(async move {
                client
                    .get_or_load(b"cold", 60, || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, &str>(b"row".to_vec())
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().value, b"row");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    let written = client
        .write_through(b"cold", b"new", 60, || async { Ok::<_, &str>(()) })
        .await
        .unwrap();
    assert_eq!(written, WriteOutcome::Cached);
    assert_eq!(client.get(b"cold").await.unwrap().unwrap().value, b"new");
    assert!(client.invalidate(b"cold", 30).await.unwrap());
    let stale = client
        .get_or_load(b"cold", 60, || async { Ok::<_, &str>(b"newer".to_vec()) })
        .await
        .unwrap();
    assert_eq!(stale.outcome, LoadOutcome::Refreshed);

    let sessions = SessionStore::new(client.clone(), "s:", 60);
    let id = sessions.create(b"who=ada").await.unwrap();
    assert_eq!(sessions.load(&id).await.unwrap().unwrap(), b"who=ada");
    sessions.save(&id, b"who=bob").await.unwrap();
    assert!(sessions.destroy(&id).await.unwrap());
    assert_eq!(sessions.load(&id).await.unwrap(), None);

    client.set(b"t", b"1", 60).await.unwrap();
    assert!(client.touch(b"t", 100).await.unwrap());
    assert_eq!(client.gat(200, b"t").await.unwrap().unwrap().value, b"1");
    assert!(client.delete(b"t").await.unwrap());
    assert!(!client.delete(b"t").await.unwrap());

    drop(server);
    let loaded = client
        .get_or_load(b"k", 60, || async { Ok::<_, &str>(b"db".to_vec()) })
        .await
        .unwrap();
    assert_eq!(loaded.outcome, LoadOutcome::CacheUnavailable);
}
