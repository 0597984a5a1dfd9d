// The ssh2 transport alone, for the bench's design floor of the SSH path
// (bench/profile-floors.ts): copies stdin into `<remote command>` run over one
// ssh2 exec channel, and exits with the remote command's status. No stream
// parsing, no buttersink on either side: what is left is ssh2's transport
// (its defaults) in one Node process, sshd on the other end.
//
// Usage: node bench/profile-ssh2-pipe.mjs <ssh_config file> <host> <remote command>
// The config's Host block for <host> gives HostName, Port, User, IdentityFile.
// The host key is not checked: this talks only to the bench's own sshd.
// Options measured by bench/ssh.ts (issue 12: what ssh2's options allow):
//   SSH2_CIPHER=<name>  offer only this cipher (default: ssh2's list, aes128-gcm first);
//   SSH2_CORK=1         cork the socket while one input chunk is written, so the
//                       packets ssh2 makes of it leave in one writev.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import ssh2 from 'ssh2';

const [configFile, host, command] = process.argv.slice(2);
if (!configFile || !host || !command) {
  console.error('usage: profile-ssh2-pipe.mjs <ssh_config> <host> <remote command>');
  process.exit(2);
}
/** @type {Record<string, string>} */
const opts = {};
let inBlock = false;
for (const raw of readFileSync(configFile, 'utf8').split('\n')) {
  const [key, ...rest] = raw.trim().split(/\s+/);
  if (!key) continue;
  if (key.toLowerCase() === 'host') inBlock = rest.includes(host);
  else if (inBlock) opts[key.toLowerCase()] ??= rest.join(' ');
}
const client = new ssh2.Client();
client.on('error', (err) => {
  console.error(`ssh2: ${err.message}`);
  process.exit(255);
});
client.on('ready', () => {
  client.exec(command, (err, channel) => {
    if (err) {
      console.error(`ssh2 exec: ${err.message}`);
      process.exit(255);
    }
    channel.stderr.pipe(process.stderr);
    channel.on('data', () => undefined);
    channel.on('exit', (code) => {
      client.end();
      process.exitCode = typeof code === 'number' ? code : 255;
    });
    if (process.env.SSH2_CORK !== '1') {
      process.stdin.pipe(channel);
      return;
    }
    process.stdin.on('data', (chunk) => {
      sock.cork();
      if (!channel.write(chunk)) {
        process.stdin.pause();
        channel.once('drain', () => process.stdin.resume());
      }
      process.nextTick(() => sock.uncork());
    });
    process.stdin.on('end', () => channel.end());
  });
});
const sock = connect(Number(opts.port ?? 22), opts.hostname ?? host);
const cipher = process.env.SSH2_CIPHER;
client.connect({
  sock,
  username: opts.user ?? process.env.USER ?? 'root',
  privateKey: readFileSync(opts.identityfile ?? `${process.env.HOME}/.ssh/id_ed25519`),
  hostVerifier: () => true,
  ...(cipher ? { algorithms: { cipher: [cipher] } } : {}),
});
