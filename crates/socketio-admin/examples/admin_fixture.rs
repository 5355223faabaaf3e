//! The server the Admin UI dashboard check runs against: 127.0.0.1:3000 (`PORT` overrides),
//! namespaces `/` and `/chat` that accept any connection, each socket joining the rooms named in
//! its CONNECT auth field `rooms`, and `/admin` in development mode for user `admin` with the
//! password `changeit` (stored as its bcrypt hash), with CORS and credentials for the
//! dashboard's origin `http://127.0.0.1:3290` (`ADMIN_UI_ORIGIN` overrides).
//!
//! Run: `cargo run -p socketio-admin --example admin_fixture`

use socketio::{Cors, Socket, SocketIo};
use socketio_admin::{AdminOptions, AdminUi};

/// bcrypt("changeit"), cost 10.
const CHANGEIT: &str = "$2b$10$xlPYwtADdV7rATddPwFlhuoD5W.nDPZQyqzAWrzmvg2BpW7s1QxW6";

async fn join_requested_rooms(socket: Socket) {
    let rooms: Vec<String> = socket
        .auth()
        .get("rooms")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    for room in rooms {
        socket.join(room);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let origin =
        std::env::var("ADMIN_UI_ORIGIN").unwrap_or_else(|_| "http://127.0.0.1:3290".into());
    let mut options = AdminOptions::basic_auth("admin", CHANGEIT);
    if let Ok(id) = std::env::var("SERVER_ID") {
        options = options.server_id(id);
    }
    let admin = AdminUi::new(options)?;
    let io = SocketIo::builder()
        .cors(Cors {
            origins: vec![origin.clone()],
            credentials: true,
        })
        .observer(admin.observer())
        .build();
    admin.attach(&io)?;
    io.of("/").on_connection(join_requested_rooms);
    io.of("/chat").on_connection(join_requested_rooms);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!(
        "admin fixture on http://{} (dashboard origin {origin}; login admin / changeit)",
        listener.local_addr()?
    );
    io.serve(listener).await?;
    Ok(())
}
