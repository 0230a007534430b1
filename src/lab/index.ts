// Public API of the NAT lab: network namespaces joined by veths with a real nftables NAT, for the
// NAT test suite and `imsec demo --nat`. Linux, root, iproute2 and nftables; see labAvailability().
export { buildNatLab, planNatLab, natRuleset, LAN4, LAN6, WAN4, WAN6, type NatLabOptions, type BuildStep } from './topology.ts';
export { NatLab, type LabFamily, type LabHost, type LabNat, type LabPlan, type NatType } from './lab.ts';
export { LabProcess, type ExitInfo, type LineMatch, type SpawnOptions } from './process.ts';
export { captureMissing, type CaptureOptions, type StopCapture } from './capture.ts';
export { parseConntrack, type ConntrackEntry, type ConntrackTuple } from './conntrack.ts';
export { labAvailability, ip6NatAvailability, toolMissing, findTool, type Availability, type RunOptions, type RunResult } from './netns.ts';
export { sweepStaleLabs } from './cleanup.ts';
export { LabError, LabCommandError, LabUnavailableError, type LabErrorCode } from './errors.ts';
