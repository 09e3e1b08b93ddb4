/** The error of every stack operation: something the user can fix (a missing program, a port in use, ...). */
export class StackError extends Error {
  override name = 'StackError';
}
