import { type ReactNode, useId } from 'react';

interface FieldProps {
  label: string;
  help?: ReactNode;
  /** Renders the control, given the ids to wire: its own id and the id of the help text. */
  children: (ids: { id: string; helpId: string | undefined }) => ReactNode;
}

/** A labelled form control with optional help text, linked by aria-describedby. */
export function Field({ label, help, children }: FieldProps) {
  const id = useId();
  const helpId = help ? `${id}-help` : undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, helpId })}
      {help ? (
        <small id={helpId} className="help">
          {help}
        </small>
      ) : null}
    </div>
  );
}
