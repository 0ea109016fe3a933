//! The epoll backend on its own: tasks, cross-thread wakes, timers, sockets, timeouts, the
//! blocking pool, panics, and cancellation of what is left when the main future ends.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::rt::{self, net::TcpListener, net::TcpStream, Runtime};

fn run<T: Send + 'static, Fut: std::future::Future<Output = T> + 'static>(
    f: impl FnOnce() -> Fut + Send + 'static,
) -> T {
    rt::block_on(Runtime::Epoll, f).expect("executor")
}

#[test]
fn spawned_tasks_run_and_return() {
    let out = run(|| async {
        let a = rt::spawn_local(async { 20 });
        let b = rt::spawn_local(async { 22 });
        a.await + b.await
    });
    assert_eq!(out, 42);
}

#[test]
fn sleep_waits_and_timers_fire_in_order() {
    let (order, took) = run(|| async {
        let seen = Rc::new(Cell::new(Vec::<u8>::new()));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (i, ms) in [(3u8, 60u64), (1, 20), (2, 40)] {
            let seen = seen.clone();
            tasks.push(rt::spawn_local(async move {
                rt::sleep(Duration::from_millis(ms)).await;
                let mut v = seen.take();
                v.push(i);
                seen.set(v);
            }));
        }
        for t in tasks {
            t.await;
        }
        (seen.take(), started.elapsed())
    });
    assert_eq!(order, vec![1, 2, 3]);
    assert!(took >= Duration::from_millis(60), "{took:?}");
}

#[test]
fn wakes_from_other_threads_reach_a_sleeping_executor() {
    let got = run(|| async {
        let (tx, rx) = futures_channel_like();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let _ = tx.send(7u32);
        });
        rx.await
    });
    assert_eq!(got, 7);
}

/// A one-shot channel from the blocking pool (whose waker is `Send`).
fn futures_channel_like() -> (
    std::sync::mpsc::Sender<u32>,
    impl std::future::Future<Output = u32>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let fut = rt::spawn_blocking(move || rx.recv().unwrap_or(0));
    (tx, fut)
}

#[test]
fn tcp_echo_and_read_timeout() {
    let (echoed, timed_out) = run(|| async {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_l.local_addr().expect("addr");
        let l = TcpListener::from_std(std_l).expect("listener");
        let server = rt::spawn_local(async move {
            let mut s = l.accept().await.expect("accept");
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.expect("read");
            s.write_all(&buf).await.expect("write");
            // Then wait for bytes that never come.
            s.set_read_timeout(Some(Duration::from_millis(80)))
                .expect("timeout");
            let r = s.read(&mut buf).await;
            matches!(r, Err(e) if e.kind() == std::io::ErrorKind::TimedOut)
        });
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"hello").await.expect("send");
        let mut back = [0u8; 5];
        c.read_exact(&mut back).await.expect("echo");
        let timed_out = server.await;
        (back, timed_out)
    });
    assert_eq!(&echoed, b"hello");
    assert!(timed_out);
}

#[test]
fn connect_refused_is_an_error() {
    let err = run(|| async {
        // Bind then drop: the port is very likely closed now.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr");
        TcpStream::connect(addr)
            .await
            .map(|_| ())
            .map_err(|e| e.kind())
    });
    assert_eq!(err, Err(std::io::ErrorKind::ConnectionRefused));
}

#[test]
fn large_writes_complete_against_a_slow_reader() {
    let total = run(|| async {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_l.local_addr().expect("addr");
        // A plain thread reads slowly, so the shard's writes hit WouldBlock many times.
        let reader = std::thread::spawn(move || {
            let (mut s, _) = std_l.accept().expect("accept");
            let mut n = 0usize;
            let mut buf = [0u8; 4096];
            loop {
                std::thread::sleep(Duration::from_micros(200));
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return n,
                    Ok(k) => n += k,
                }
            }
        });
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let block = vec![7u8; 4 << 20];
        c.write_all(&block).await.expect("write");
        c.close().await.expect("close");
        drop(c);
        rt::spawn_blocking(move || reader.join().unwrap_or(0)).await
    });
    assert_eq!(total, 4 << 20);
}

#[test]
fn leftover_tasks_are_cancelled_when_main_ends() {
    struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = dropped.clone();
    run(move || async move {
        let flag = Flag(d);
        rt::spawn_local(async move {
            let _flag = flag;
            rt::sleep(Duration::from_secs(3600)).await;
        })
        .detach();
        rt::sleep(Duration::from_millis(10)).await;
    });
    assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn blocking_pool_panics_reach_the_awaiting_task() {
    let r = std::thread::spawn(|| {
        rt::block_on_here(Runtime::Epoll, async {
            rt::spawn_blocking(|| -> u8 { panic!("boom in pool") }).await
        })
    })
    .join();
    let msg = r.expect_err("the panic propagates to the shard thread");
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"boom in pool"));
}

#[test]
fn readable_sees_bytes_written_from_another_thread() {
    run(|| async {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().expect("pair");
        a.set_nonblocking(true).expect("nb");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let _ = b.write_all(b"x");
        });
        rt::net::readable(std::os::fd::AsRawFd::as_raw_fd(&a))
            .await
            .expect("readable");
    });
}

#[test]
fn write_timeout_fires_when_the_peer_stops_reading() {
    let timed_out = run(|| async {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_l.local_addr().expect("addr");
        let mut c = TcpStream::connect(addr).await.expect("connect");
        // Accepted but never read: the socket buffers fill and writes stop making progress.
        let (_peer, _) = std_l.accept().expect("accept");
        c.set_write_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let block = vec![0u8; 1 << 20];
        let started = Instant::now();
        loop {
            match c.write(&block).await {
                Ok(_) if started.elapsed() < Duration::from_secs(10) => continue,
                Ok(_) => return false,
                Err(e) => return e.kind() == std::io::ErrorKind::TimedOut,
            }
        }
    });
    assert!(timed_out);
}

#[test]
fn cancel_drops_the_future_before_it_returns() {
    // What the old reactor test checked through its timer count ("no timer left behind"):
    // cancelling a task waiting on a timer drops its future (and with it the timer) at once.
    let (left, finished) = run(|| async {
        let live = Rc::new(Cell::new(0usize));
        for _ in 0..1000 {
            struct Live(Rc<Cell<usize>>);
            impl Drop for Live {
                fn drop(&mut self) {
                    self.0.set(self.0.get() - 1);
                }
            }
            live.set(live.get() + 1);
            let guard = Live(live.clone());
            let t = rt::spawn_local(async move {
                let _guard = guard;
                rt::sleep(Duration::from_secs(3600)).await;
            });
            // Let it run once and register its timer, then cancel it.
            futures_lite::future::yield_now().await;
            assert!(t.cancel().await.is_none());
        }
        // A task that has finished gives its output to cancel.
        let done = rt::spawn_local(async { 5u8 });
        futures_lite::future::yield_now().await;
        (live.get(), done.cancel().await)
    });
    assert_eq!(left, 0);
    assert_eq!(finished, Some(5));
}

#[test]
fn a_dropped_task_is_cancelled() {
    let ran = run(|| async {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        drop(rt::spawn_local(async move {
            rt::sleep(Duration::from_millis(20)).await;
            r.set(true);
        }));
        rt::sleep(Duration::from_millis(60)).await;
        ran.get()
    });
    assert!(!ran, "dropping a Task stops it, as with glommio");
}

#[test]
fn a_panicking_task_brings_its_shard_down() {
    let r = std::thread::spawn(|| {
        rt::block_on_here(Runtime::Epoll, async {
            rt::spawn_local(async { panic!("boom in a task") }).detach();
            rt::sleep(Duration::from_secs(5)).await;
        })
    })
    .join();
    let msg = r.expect_err("the task's panic reaches the shard thread");
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"boom in a task"));
}

#[test]
fn the_blocking_pool_is_bounded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // block_on_here gives the pool 2 threads.
    let most = std::thread::spawn(|| {
        rt::block_on_here(Runtime::Epoll, async {
            let now = Arc::new(AtomicUsize::new(0));
            let most = Arc::new(AtomicUsize::new(0));
            let jobs: Vec<_> = (0..6)
                .map(|_| {
                    let (now, most) = (now.clone(), most.clone());
                    rt::spawn_local(rt::spawn_blocking(move || {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        now.fetch_sub(1, Ordering::SeqCst);
                    }))
                })
                .collect();
            for j in jobs {
                j.await;
            }
            most.load(Ordering::SeqCst)
        })
    })
    .join()
    .expect("no panic")
    .expect("runtime");
    assert_eq!(most, 2, "never more jobs at once than pool threads");
}

#[test]
fn leftover_tasks_waiting_on_other_threads_are_cancelled_when_main_ends() {
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};
    use std::thread::ThreadId;

    /// Records which thread dropped it.
    struct Guard(Arc<Mutex<Option<ThreadId>>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Ok(mut by) = self.0.lock() {
                *by = Some(std::thread::current().id());
            }
        }
    }
    let on_pool = Arc::new(Mutex::new(None));
    let on_thread = Arc::new(Mutex::new(None));
    let parked: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
    let (a, b, p) = (on_pool.clone(), on_thread.clone(), parked.clone());
    let shard = run(move || async move {
        // Waits on a blocking job that outlives the executor.
        let guard = Guard(a);
        rt::spawn_local(async move {
            let _guard = guard;
            rt::spawn_blocking(|| std::thread::sleep(Duration::from_millis(300))).await;
        })
        .detach();
        // Waits on a waker that another thread will use after the executor is gone.
        let guard = Guard(b);
        rt::spawn_local(async move {
            let _guard = guard;
            std::future::poll_fn(|cx| {
                if let Ok(mut w) = p.lock() {
                    *w = Some(cx.waker().clone());
                }
                Poll::<()>::Pending
            })
            .await;
        })
        .detach();
        rt::sleep(Duration::from_millis(20)).await;
        std::thread::current().id()
    });
    // Both futures were dropped before block_on returned, on the shard's own thread.
    assert_eq!(*on_pool.lock().expect("lock"), Some(shard));
    assert_eq!(*on_thread.lock().expect("lock"), Some(shard));
    // A late wake from elsewhere is harmless (it used to drop the future here and abort).
    let late = parked
        .lock()
        .expect("lock")
        .take()
        .expect("the task parked its waker");
    std::thread::spawn(move || late.wake())
        .join()
        .expect("late wake");
    std::thread::sleep(Duration::from_millis(400));
}

#[test]
fn a_timeout_set_while_a_read_waits_applies_to_that_read() {
    let (zero_refused, timed_out) = run(|| async {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_l.local_addr().expect("addr");
        let c = Rc::new(std::cell::RefCell::new(
            TcpStream::connect(addr).await.expect("connect"),
        ));
        let (_peer, _) = std_l.accept().expect("accept");
        let zero_refused = c.borrow().set_read_timeout(Some(Duration::ZERO)).is_err();
        // The read starts with no limit (the stream is borrowed only while it is polled); the
        // main task then sets one.
        let reader = c.clone();
        let read = rt::spawn_local(async move {
            let mut buf = [0u8; 8];
            std::future::poll_fn(|cx| {
                let mut s = reader.borrow_mut();
                futures_io::AsyncRead::poll_read(std::pin::Pin::new(&mut *s), cx, &mut buf)
            })
            .await
        });
        rt::sleep(Duration::from_millis(20)).await;
        c.borrow()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let r = futures_lite::future::or(async { Some(read.await) }, async {
            rt::sleep(Duration::from_secs(5)).await;
            None
        })
        .await;
        let timed_out = matches!(r, Some(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut);
        (zero_refused, timed_out)
    });
    assert!(
        zero_refused,
        "a zero timeout is refused, as glommio and std do"
    );
    assert!(timed_out, "the waiting read took the new limit");
}
