import { type ReactNode, useEffect, useState } from 'react';
import { Field } from './field';

interface Props {
  label: string;
  help?: ReactNode;
  value: number;
  onChange: (v: number) => void;
  min?: number;
  max?: number;
  step?: number | 'any';
  integer?: boolean;
}

/**
 * A labelled number input that lets the text be empty or half-typed ("0.") while editing: only a valid number in
 * range reaches `onChange`; anything else is marked invalid and explained.
 */
export function NumberField({ label, help, value, onChange, min, max, step = 'any', integer = false }: Props) {
  const [text, setText] = useState(String(value));
  useEffect(() => {
    setText((t) => (Number(t) === value && t.trim() !== '' ? t : String(value)));
  }, [value]);
  const n = Number(text);
  const invalid =
    text.trim() === '' ||
    !Number.isFinite(n) ||
    (integer && !Number.isInteger(n)) ||
    (min !== undefined && n < min) ||
    (max !== undefined && n > max);
  const range = [min !== undefined ? `at least ${min}` : '', max !== undefined ? `at most ${max}` : '']
    .filter(Boolean)
    .join(', ');
  return (
    <Field
      label={label}
      help={
        <>
          {help}
          {invalid ? (
            <span className="invalid-text">
              {' '}
              Enter {integer ? 'a whole number' : 'a number'}
              {range ? `, ${range}` : ''}.
            </span>
          ) : null}
        </>
      }
    >
      {({ id, helpId }) => (
        <input
          id={id}
          type="number"
          inputMode={integer ? 'numeric' : 'decimal'}
          aria-describedby={helpId}
          aria-invalid={invalid || undefined}
          min={min}
          max={max}
          step={step}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            const v = Number(e.target.value);
            const ok =
              e.target.value.trim() !== '' &&
              Number.isFinite(v) &&
              (!integer || Number.isInteger(v)) &&
              (min === undefined || v >= min) &&
              (max === undefined || v <= max);
            if (ok) onChange(v);
          }}
        />
      )}
    </Field>
  );
}
