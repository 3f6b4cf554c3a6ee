/**
 * A user error: the job cannot succeed as submitted (bad dataset layout, no readable images). The trainer maps it to
 * TrainerExit.USER_ERROR (fail at once, never retry, never charge). Storage and network failures are not
 * DatasetErrors: they propagate as they are and count as infrastructure errors.
 */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  /** The matching GpulabError code, for callers that report it through the API. */
  readonly code = 'DATASET_INVALID' as const;

  constructor(
    message: string,
    /** Machine-readable detail: the dataset URI and every problem found. */
    readonly details: { uri?: string; problems?: string[] } = {},
  ) {
    super(message);
  }
}
