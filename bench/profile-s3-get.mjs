// The AWS SDK's download alone, for the bench's design floor of the S3
// download path (bench/profile-floors.ts): one GetObject of <key>, its body
// piped to stdout. No stream parsing, no checks. Credentials and region come
// from the environment.
//
// Usage: node bench/profile-s3-get.mjs <endpoint> <bucket> <key>
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';

const [endpoint, Bucket, Key] = process.argv.slice(2);
if (!endpoint || !Bucket || !Key) {
  console.error('usage: profile-s3-get.mjs <endpoint> <bucket> <key>');
  process.exit(2);
}
const s3 = new S3Client({
  endpoint,
  forcePathStyle: true,
  region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
});
const { Body } = await s3.send(new GetObjectCommand({ Bucket, Key }));
// In Node the body is a Readable.
await pipeline(Body, process.stdout);
