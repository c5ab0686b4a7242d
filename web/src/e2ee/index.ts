// The browser implementation of docs/e2ee.md (format v1, suite 0x01).
export * from "./constants.js";
export * from "./errors.js";
export * from "./formats.js";
export * from "./primitives.js";
export * from "./session.js";
