import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { UnsupportedUriError } from '../../src/libvirt/errors.js';
import { pickSocket, redactUri, resolveLibvirtUri } from '../../src/libvirt/uri.js';

describe('libvirt_uri', () => {
  it('qemu:///system probes the modular daemon, then libvirtd', () => {
    expect(resolveLibvirtUri('qemu:///system')).toEqual({
      name: 'qemu:///system',
      socketCandidates: ['/run/libvirt/virtqemud-sock', '/run/libvirt/libvirt-sock'],
      explicitSocket: false,
    });
  });

  it('read-only picks the -ro sockets', () => {
    expect(resolveLibvirtUri('qemu:///system', { readOnly: true }).socketCandidates).toEqual([
      '/run/libvirt/virtqemud-sock-ro',
      '/run/libvirt/libvirt-sock-ro',
    ]);
  });

  it('+unix with socket= uses that socket and strips the transport parameter from the name', () => {
    expect(resolveLibvirtUri('qemu+unix:///system?socket=/var/run/libvirt/libvirt-sock')).toEqual({
      name: 'qemu:///system',
      socketCandidates: ['/var/run/libvirt/libvirt-sock'],
      explicitSocket: true,
    });
  });

  it('test+unix:///abs/node.xml opens test:///abs/node.xml through the daemon', () => {
    const r = resolveLibvirtUri('test+unix:///abs/node.xml');
    expect(r.name).toBe('test:///abs/node.xml');
    expect(r.socketCandidates).toEqual(['/run/libvirt/libvirt-sock']);
  });

  it('keeps driver parameters that are not the transport\'s', () => {
    expect(resolveLibvirtUri('qemu+unix:///system?socket=/s&mode=legacy&foo=bar').name).toBe('qemu:///system?foo=bar');
  });

  it('the session URI uses the user runtime directory', () => {
    expect(resolveLibvirtUri('qemu:///session', { env: { XDG_RUNTIME_DIR: '/run/user/1000' } }).socketCandidates).toEqual(['/run/user/1000/libvirt/libvirt-sock']);
  });

  it.each([
    ['qemu+ssh://root@host/system', /transport ssh is not supported/],
    ['qemu+tcp://host/system', /transport tcp is not supported/],
    ['qemu+tls://host/system', /transport tls is not supported/],
    ['qemu://host/system', /a host without \+transport means TLS/],
    ['qemu+unix://host/system', /takes no host/],
    ['not a uri', /is not a libvirt URI/],
    ['qemu+unix:///system?socket=relative/sock', /must be an absolute path/],
  ])('%s is refused clearly', (uri, msg) => {
    expect(() => resolveLibvirtUri(uri)).toThrow(UnsupportedUriError);
    expect(() => resolveLibvirtUri(uri)).toThrow(msg);
  });

  it('never shows a password from the URI in its errors', () => {
    expect(() => resolveLibvirtUri('qemu+ssh://admin:s3cret@host/system')).toThrow(/qemu\+ssh:\/\/\*\*\*@host\/system/);
    expect(() => resolveLibvirtUri('qemu+ssh://admin:s3cret@host/system')).not.toThrow(/s3cret/);
    expect(redactUri('qemu+tcp://u:p@h/system')).toBe('qemu+tcp://***@h/system');
  });

  it('pickSocket takes the first candidate that exists', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'uri-'));
    const r = resolveLibvirtUri('qemu:///system', { runDir: dir });
    expect(pickSocket(r)).toBe(path.join(dir, 'libvirt-sock'));
    writeFileSync(path.join(dir, 'virtqemud-sock'), '');
    expect(pickSocket(r)).toBe(path.join(dir, 'virtqemud-sock'));
  });
});
