// A mail server for the journeys: speaks just enough SMTP to accept what matsuri sends,
// and counts the messages. Starting it late is how a journey brings "the mail server
// is back" about.
import net from 'node:net';

export function startSmtp(port) {
  const received = [];
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = '';
    let inData = false;
    let message = '';
    socket.write('220 matsuri-e2e ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let end;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            received.push(message);
            message = '';
            socket.write('250 queued\r\n');
          } else {
            message += `${line}\n`;
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') socket.write('250 matsuri-e2e\r\n');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') {
          socket.end('221 bye\r\n');
        } else socket.write('250 ok\r\n');
      }
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) => {
    // matsuri keeps its SMTP connections pooled: closing ends them too.
    const close = () => {
      server.close();
      for (const socket of sockets) socket.destroy();
    };
    server.listen(port, '127.0.0.1', () => resolve({ received, close }));
  });
}
