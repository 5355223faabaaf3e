//! The demo application in `/chat`: rooms, room messages, direct messages to every socket of a
//! user with a delivery acknowledgement, typing indicators (volatile) and member lists. Invalid
//! input fails the handler; the client gets an error ack or an `error` event with the reason.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use socketio::{AckSender, ConnectRequest, Data, HandlerError, Socket, SocketIo};

use crate::auth::{Auth, User};

const MAX_TEXT: usize = 2000;

fn user_room(id: &str) -> String {
    format!("user:{id}")
}

fn valid_room(room: &str) -> Result<(), HandlerError> {
    if room.is_empty() || room.len() > 64 || room.starts_with("user:") {
        return Err(
            HandlerError::new("invalid room").with_data(serde_json::json!({
                "reason": "a room name has 1 to 64 characters and does not start with 'user:'"
            })),
        );
    }
    Ok(())
}

fn valid_text(text: &str) -> Result<(), HandlerError> {
    if text.trim().is_empty() || text.len() > MAX_TEXT {
        return Err(
            HandlerError::new("invalid message").with_data(serde_json::json!({
                "reason": format!("text must have 1 to {MAX_TEXT} characters")
            })),
        );
    }
    Ok(())
}

fn me(socket: &Socket) -> Result<User, HandlerError> {
    socket
        .get::<User>()
        .ok_or_else(|| HandlerError::new("not authenticated"))
}

#[derive(Deserialize)]
struct RoomMessage {
    room: String,
    text: String,
}

#[derive(Deserialize)]
struct DirectMessage {
    to: String,
    text: String,
}

#[derive(Deserialize)]
struct Typing {
    room: String,
}

/// A token bucket: `rate` events per second, bursts of up to `2 * rate`.
struct RateLimit {
    rate: f64,
    tokens: f64,
    at: Instant,
    /// Refusals not logged yet, and when the last log line was written: one line per socket
    /// per second at most, with the count.
    refused: u32,
    logged: Option<Instant>,
}

impl RateLimit {
    fn new(rate: u32) -> RateLimit {
        let rate = f64::from(rate);
        RateLimit {
            rate,
            tokens: 2.0 * rate,
            at: Instant::now(),
            refused: 0,
            logged: None,
        }
    }

    /// Counts a refusal; returns how many to log now (0: wait for the window to pass).
    fn refusals_to_log(&mut self, now: Instant) -> u32 {
        self.refused += 1;
        let due = self
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
        if !due {
            return 0;
        }
        self.logged = Some(now);
        std::mem::take(&mut self.refused)
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(2.0 * self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }
}

/// Registers `/chat` with its auth middleware and handlers; `rate_limit` events per second per
/// socket (0: no limit).
pub(crate) fn register(io: &SocketIo, auth: Arc<Auth>, rate_limit: u32, warn_before: Duration) {
    let checker = auth.clone();
    io.of("/chat")
        .use_middleware(move |req: ConnectRequest| {
            let verdict = checker.verify_until(req.auth_value());
            async move {
                let (user, expires) = verdict?;
                req.insert(user);
                req.insert(TokenExpiry(expires));
                Ok(())
            }
        })
        .on_connection(move |socket: Socket| {
            let auth = auth.clone();
            async move {
            let Some(user) = socket.get::<User>() else {
                return;
            };
            // The token is valid until its `exp`, not for the socket's whole life.
            if let Some(TokenExpiry(expires)) = socket.get::<TokenExpiry>() {
                socket.expire_at(expires, expiry_notice(warn_before));
            }
            // Direct messages reach every socket of a user through this room, on every server.
            socket.join(user_room(&user.id));
            // What `members` reads back from the sockets of every server.
            let _ = socket.set_data(&user);
            tracing::info!(sid = %socket.id(), user = %user.id, "joined /chat");
            socket.on_disconnect(|socket: Socket, reason| async move {
                tracing::info!(sid = %socket.id(), %reason, "left /chat");
            });
            if rate_limit > 0 {
                // Over the limit, an event is refused (error ack or `error` event) and dropped.
                let bucket = Mutex::new(RateLimit::new(rate_limit));
                socket.use_packet(move |socket, _, _| {
                    let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
                    let now = Instant::now();
                    let verdict = bucket.take(now);
                    if verdict.is_err() {
                        let count = bucket.refusals_to_log(now);
                        if count > 0 {
                            tracing::warn!(sid = %socket.id(), refused = count, "rate limit: events refused");
                        }
                    }
                    verdict.map_err(|wait| {
                        HandlerError::new("rate limited").with_data(serde_json::json!({
                            "reason": format!("more than {rate_limit} events per second"),
                            "retry_after_ms": wait.as_millis() as u64 + 1,
                        }))
                    })
                });
            }
            handlers(&socket);
            refresh_handler(&socket, auth, warn_before);
        }});
}

/// When the socket's token expires (see [`Socket::expire_at`]).
#[derive(Clone, Copy)]
struct TokenExpiry(std::time::SystemTime);

fn expiry_notice(warn_before: Duration) -> socketio::ExpiryNotice {
    socketio::ExpiryNotice::new("token-expiring", "token-expired", warn_before)
        .message("token expired")
}

/// `refresh-token` (a fresh JWT for the same user): the socket's deadline moves to the new
/// token's `exp`, rooms and all. A token that does not verify, or names another user, is
/// refused and the socket is disconnected.
fn refresh_handler(socket: &Socket, auth: Arc<Auth>, warn_before: Duration) {
    socket.on(
        "refresh-token",
        move |socket: Socket, Data(token): Data<String>, ack: AckSender| {
            let auth = auth.clone();
            async move {
                let current = me(&socket)?;
                let verdict = auth
                    .verify_until(&serde_json::json!({ "token": token }))
                    .map_err(|e| (e.message, e.data))
                    .and_then(|(user, exp)| {
                        if user.id == current.id {
                            Ok(exp)
                        } else {
                            Err(("Invalid token".to_owned(), Some(serde_json::json!({"code": "OTHER_USER"}))))
                        }
                    });
                match verdict {
                    Ok(exp) => {
                        socket.expire_at(exp, expiry_notice(warn_before));
                        let at = exp
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64);
                        ack.send(&serde_json::json!({"ok": true, "expires_at": socketio::iso_date(at)}))?;
                    }
                    Err((message, data)) => {
                        tracing::info!(sid = %socket.id(), user = %current.id, %message, "refresh refused: disconnecting");
                        let mut err = HandlerError::new(message);
                        if let Some(data) = data {
                            err = err.with_data(data);
                        }
                        let _ = ack.send_error(&err);
                        socket.disconnect();
                    }
                }
                Ok::<_, HandlerError>(())
            }
        },
    );
}

fn handlers(socket: &Socket) {
    socket.on("whoami", |socket: Socket, ack: AckSender| async move {
        ack.send(&me(&socket)?)?;
        Ok::<_, HandlerError>(())
    });
    socket.on(
        "join",
        |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
            valid_room(&room)?;
            let user = me(&socket)?;
            socket.join(room.as_str());
            socket.to(room.as_str()).emit(
                "user-joined",
                &serde_json::json!({"room": room, "user": user}),
            )?;
            ack.send(&serde_json::json!({"ok": true, "room": room}))?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "leave",
        |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
            valid_room(&room)?;
            let user = me(&socket)?;
            socket.leave(&room);
            socket.to(room.as_str()).emit(
                "user-left",
                &serde_json::json!({"room": room, "user": user}),
            )?;
            ack.send(&serde_json::json!({"ok": true, "room": room}))?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "message",
        |socket: Socket, Data(msg): Data<RoomMessage>, ack: AckSender| async move {
            valid_room(&msg.room)?;
            valid_text(&msg.text)?;
            if !socket.rooms().iter().any(|r| **r == *msg.room) {
                return Err(HandlerError::new("not in room")
                    .with_data(serde_json::json!({"room": msg.room})));
            }
            let out = serde_json::json!({
                "room": msg.room, "from": me(&socket)?, "text": msg.text, "at": socketio::iso_now(),
            });
            socket
                .namespace()
                .to(msg.room.as_str())
                .emit("message", &out)?;
            ack.send(&serde_json::json!({"ok": true}))?;
            Ok(())
        },
    );
    socket.on("dm", |socket: Socket, Data(msg): Data<DirectMessage>, ack: AckSender| async move {
        valid_text(&msg.text)?;
        let out = serde_json::json!({"from": me(&socket)?, "text": msg.text, "at": socketio::iso_now()});
        // Delivered = acknowledged by the recipient's sockets (all of them, any server).
        let answers = socket
            .namespace()
            .to(user_room(&msg.to))
            .timeout(Duration::from_secs(2))
            .emit_with_ack("dm", &out)
            .await;
        let delivered = match answers {
            Ok(all) => all.len(),
            Err(partial) => partial.responses().len(),
        };
        ack.send(&serde_json::json!({"ok": delivered > 0, "delivered": delivered}))?;
        Ok::<_, HandlerError>(())
    });
    socket.on(
        "typing",
        |socket: Socket, Data(t): Data<Typing>| async move {
            valid_room(&t.room)?;
            let user = me(&socket)?;
            socket
                .to(t.room.as_str())
                .volatile()
                .emit("typing", &serde_json::json!({"room": t.room, "user": user}))?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "members",
        |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
            valid_room(&room)?;
            let sockets = socket.namespace().to(room.as_str()).fetch_sockets().await?;
            // One entry per user, whatever their number of sockets.
            let users: BTreeMap<String, User> = sockets
                .iter()
                .filter_map(|info| serde_json::from_value::<User>(info.data.clone()).ok())
                .map(|u| (u.id.clone(), u))
                .collect();
            ack.send(&users.into_values().collect::<Vec<_>>())?;
            Ok::<_, HandlerError>(())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_allows_bursts_then_refills() {
        let start = Instant::now();
        let mut bucket = RateLimit::new(10);
        for _ in 0..20 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).expect_err("burst used up");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        // 250 ms later: 2.5 tokens.
        let later = start + Duration::from_millis(250);
        assert!(bucket.take(later).is_ok());
        assert!(bucket.take(later).is_ok());
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn refusals_are_logged_once_a_second_with_their_count() {
        let start = Instant::now();
        let mut bucket = RateLimit::new(10);
        assert_eq!(
            bucket.refusals_to_log(start),
            1,
            "the first is logged at once"
        );
        let burst: u32 = (0..27)
            .map(|i| bucket.refusals_to_log(start + Duration::from_millis(i * 10)))
            .sum();
        assert_eq!(burst, 0, "the rest of the burst waits for the window");
        assert_eq!(bucket.refusals_to_log(start + Duration::from_secs(1)), 28);
    }
}
