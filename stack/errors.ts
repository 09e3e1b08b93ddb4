/** The error of every stack operation: something the user can fix (a missing program, a port in use, ...). */
export class StackError extends Error {
  override name = 'StackError';
}

/** A program the stack needs is not installed and cannot be installed here (not root, not Debian, apt failed). */
export class MissingProgramError extends StackError {
  override name = 'MissingProgramError';
}
