//! The Redis emitter from the command line: reaches the clients of a cluster that runs the
//! classic Redis adapter (Node or Rust servers) without being a server.
//!
//! ```text
//! cargo run -p socketio-server --example emit -- redis://127.0.0.1:6379 emit ROOM EVENT JSON
//! ... join ROOM NEWROOM | leave ROOM OLDROOM | disconnect ROOM | server-side EVENT JSON
//! ```
//! (`ROOM` `*` means every socket.)

use socketio_redis::{Emitter, RedisConfig, RedisConnection};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .ok_or("missing argument (see the file's doc)")
    };
    let redis = RedisConnection::connect(RedisConfig::new(arg(0)?)).await?;
    let emitter = Emitter::new(redis.clone());
    let select = |room: &str| {
        if room == "*" {
            emitter.clone()
        } else {
            emitter.to(room)
        }
    };
    let json =
        |i: usize| -> Result<serde_json::Value, BoxError> { Ok(serde_json::from_str(arg(i)?)?) };
    match arg(1)? {
        "emit" => select(arg(2)?).emit(arg(3)?, &json(4)?).await?,
        "join" => select(arg(2)?).sockets_join(&[arg(3)?]).await?,
        "leave" => select(arg(2)?).sockets_leave(&[arg(3)?]).await?,
        "disconnect" => select(arg(2)?).disconnect_sockets(false).await?,
        "server-side" => emitter.server_side_emit(arg(2)?, &json(3)?).await?,
        other => return Err(format!("unknown operation {other}").into()),
    }
    redis.close().await;
    Ok(())
}
