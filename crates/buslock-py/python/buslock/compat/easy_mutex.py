"""Drop-in for ``di_sensors.easy_mutex`` (DexterInd/DI_Sensors) on
``buslock.compat.I2C_mutex``.

    # from di_sensors.easy_mutex import ifMutexAcquire, ifMutexRelease
    from buslock.compat.easy_mutex import ifMutexAcquire, ifMutexRelease

``ifMutexAcquire(mutex_enabled)`` takes the I2C bus when `mutex_enabled` is
true or the "overall mutex" flag file exists (checked at each call), and
``ifMutexRelease(mutex_enabled)`` releases it under the same condition;
one ``I2C_mutex.Mutex`` is shared by the whole process, as in the original.
"""

from .I2C_mutex import Mutex

__all__ = ["ifMutexAcquire", "ifMutexRelease", "mutex"]

#: The process-wide I2C mutex.
mutex = Mutex(debug=False)


def ifMutexAcquire(mutex_enabled: bool = False) -> None:
    """Acquire the I2C bus if `mutex_enabled` or the overall mutex is set."""
    if mutex_enabled or mutex.overall_mutex():
        mutex.acquire()


def ifMutexRelease(mutex_enabled: bool = False) -> None:
    """Release the I2C bus if `mutex_enabled` or the overall mutex is set."""
    if mutex_enabled or mutex.overall_mutex():
        mutex.release()
