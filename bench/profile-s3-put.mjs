// The AWS SDK's multipart upload alone, for the bench's design floor of the
// S3 upload path (bench/profile-floors.ts): reads stdin in parts of
// <part MiB>, uploads up to <jobs> parts at once with @aws-sdk/client-s3 (its
// default checksums), completes the upload. No stream parsing, no own hashing,
// no resume records. Credentials and region come from the environment.
//
// Usage: node bench/profile-s3-put.mjs <endpoint> <bucket> <key> [part MiB = 100] [jobs = 4]
import { Buffer } from 'node:buffer';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';

const [endpoint, Bucket, Key, partMiB = '100', jobsArg = '4'] = process.argv.slice(2);
if (!endpoint || !Bucket || !Key) {
  console.error('usage: profile-s3-put.mjs <endpoint> <bucket> <key> [part MiB] [jobs]');
  process.exit(2);
}
const partSize = Number(partMiB) * 1024 * 1024;
const jobs = Number(jobsArg);
const s3 = new S3Client({
  endpoint,
  forcePathStyle: true,
  region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
});
const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
/** @type {{ PartNumber: number, ETag: string | undefined }[]} */
const parts = [];
/** @type {Set<Promise<void>>} */
const inflight = new Set();
/** @type {Promise<void>[]} */
const all = [];
let number = 0;
/** @param {Buffer} Body */
async function upload(Body) {
  const PartNumber = ++number;
  const p = s3
    .send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body }))
    .then((r) => void parts.push({ PartNumber, ETag: r.ETag }));
  all.push(p);
  inflight.add(p);
  const done = () => void inflight.delete(p);
  p.then(done, done);
  if (inflight.size >= jobs) await Promise.race(inflight).catch(() => undefined);
}
/** @type {Buffer[]} */
let pending = [];
let size = 0;
for await (const chunk of process.stdin) {
  pending.push(chunk);
  size += chunk.length;
  if (size >= partSize) {
    const whole = Buffer.concat(pending, size);
    pending = [whole.subarray(partSize)];
    size = whole.length - partSize;
    await upload(whole.subarray(0, partSize));
  }
}
if (size > 0 || number === 0) await upload(Buffer.concat(pending, size));
await Promise.all(all);
parts.sort((a, b) => a.PartNumber - b.PartNumber);
await s3.send(
  new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
);
