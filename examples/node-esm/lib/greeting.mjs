export const greeting = (prefix, name) => `${prefix}, ${name}!`;
