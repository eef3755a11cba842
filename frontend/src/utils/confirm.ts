import { ElMessageBox } from 'element-plus'
import 'element-plus/es/components/message-box/style/css'
import { i18n } from '@/i18n'

/**
 * Asks the person to confirm; resolves true on OK, false on cancel or close. `confirmText` / `cancelText` name
 * the two choices where OK / Cancel would be ambiguous (cancelling a task: [Keep running] [Cancel task]).
 */
export async function confirmAction(
  message: string,
  options: { danger?: boolean; confirmText?: string; cancelText?: string } = {},
): Promise<boolean> {
  const t = i18n.global.t
  try {
    await ElMessageBox.confirm(message, t('common.confirmTitle'), {
      confirmButtonText: options.confirmText ?? t('common.ok'),
      cancelButtonText: options.cancelText ?? t('common.cancel'),
      type: options.danger ? 'warning' : 'info',
      confirmButtonClass: options.danger ? 'el-button--danger' : undefined,
    })
    return true
  } catch {
    return false
  }
}
