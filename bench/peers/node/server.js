// The benchmark contract on the Node.js reference server (socket.io@4), on 127.0.0.1:$PORT.
const { createServer } = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const httpServer = createServer();
httpServer.on("connection", (socket) => socket.setNoDelay(true));
const io = new Server(httpServer);

io.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "bad") {
    return next(new Error("unauthorized"));
  }
  next();
});

io.on("connection", (socket) => {
  socket.on("echo", (data, ack) => {
    if (typeof ack === "function") ack(data);
    else socket.emit("echo", data);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack("ok");
  });
  socket.on("broadcast", (msg) => {
    io.to(msg.room).emit("bcast", msg.data);
  });
  socket.on("fail", () => {
    socket.emit("error", { message: "boom" });
  });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`node socket.io peer on 127.0.0.1:${port}`));
