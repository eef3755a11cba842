import { watch, type Ref } from 'vue'
import { changedFields, recheckErrors, type FieldErrors, type TaskForm } from '@/utils/taskForm'

/** Clears each error of the task form as its field is fixed (fields without an error are not checked). */
export function useLiveErrors(form: TaskForm, errors: Ref<FieldErrors>): void {
  const snapshot = (): TaskForm => ({ ...form, env: form.env.map((row) => ({ ...row })) })
  let before = snapshot()
  watch(form, () => {
    const now = snapshot()
    errors.value = recheckErrors(errors.value, form, changedFields(now, before))
    before = now
  }, { deep: true })
}

/** Ctrl+Enter (Cmd+Enter on a Mac) submits; a capture listener, so the script editor does not take it first. */
export function isSubmitKey(event: KeyboardEvent): boolean {
  return event.key === 'Enter' && (event.ctrlKey || event.metaKey) && !event.isComposing
}
