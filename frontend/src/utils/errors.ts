import { ElMessage } from 'element-plus'
import 'element-plus/es/components/message/style/css'
import { ApiError } from '@/api'
import { i18n } from '@/i18n'

/** Shows an error to the person. A 401 is skipped: the token dialog already asks for a token. */
export function showError(err: unknown): void {
  const t = i18n.global.t
  let message: string
  if (err instanceof ApiError) {
    if (err.status === 401) return
    if (err.code === 'network_error') message = t('errors.network')
    else if (err.code === 'http_error') message = t('errors.http', { status: err.status })
    else message = err.message
  } else {
    message = err instanceof Error ? err.message : String(err)
  }
  // Grouping merges the same message repeated by a poller into one toast with a counter.
  ElMessage({ type: 'error', message, grouping: true, showClose: true })
}

export function showSuccess(message: string): void {
  ElMessage({ type: 'success', message, grouping: true })
}
