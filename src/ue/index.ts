// The UE of imsec (24.229 §5.1.1, 33.203 §7): registration with IMS AKA and the four SAs,
// re-registration, de-registration, and protected requests both ways.
export { Ue } from './ue.ts';
export {
  DEFAULT_OFFERS,
  type IncomingAnswer,
  type IncomingRequest,
  type OpenPlainTransport,
  type RequestHandler,
  type UeEventMap,
  type UeExchangePhase,
  type UeObserver,
  type UeOptions,
  type UeStatus,
} from './ue-types.ts';
export { UeError, type UeErrorCode } from './errors.ts';
export { isRegistered, transition, type RegAction, type RegEvent, type RegState, type RegTransition } from './registration-state.ts';
export {
  type FailureReason,
  type RegistrationFailure,
  type RegistrationKind,
  type RegistrationOk,
  type RegistrationResult,
} from './registration.ts';
export { SharedTransactions } from './sip-io.ts';
export { REG_AWAIT_AUTH_MS, choosePort, type ClientOffer } from './sa-table.ts';
export {
  akaAuthorization,
  buildProtectedRequest,
  buildRegister,
  contactUser,
  initialAuthorization,
  parseAkaChallenge,
  parseRegisterOk,
  type AkaChallenge,
  type UeIdentity,
} from './register-request.ts';
